//! Integration tests of the `kvlab` binary: one test crate (one link).

mod bad_input;
mod crash_safety;
mod device_flag;
mod engine_cli;
mod gemma3_cli;
mod items;
mod layering;
mod lego_pipeline;
mod pipeline_cache;
mod press_cli;
mod press_pipeline;
mod rag_pipeline;
mod rekv_pipeline;
mod report_page;
mod sandbox;
mod slurm;
mod spec_cli;
mod spec_pipeline;
mod stage_table;
mod unsupported_arch;
