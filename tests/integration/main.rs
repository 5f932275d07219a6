//! Integration tests of the `kvlab` binary: one test crate (one link).

mod bad_input;
mod crash_safety;
mod engine_cli;
mod items;
mod layering;
mod lego_pipeline;
mod pipeline_cache;
mod press_pipeline;
mod rag_pipeline;
mod rekv_pipeline;
mod report_page;
mod sandbox;
mod slurm;
mod spec_cli;
mod stage_table;
