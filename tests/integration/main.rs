//! Integration tests of the `kvlab` binary: one test crate (one link).

mod bad_input;
mod crash_safety;
mod engine_cli;
mod pipeline_cache;
mod sandbox;
mod spec_cli;
