//! kvlab: a content-addressed workbench for KV-cache research.
//!
//! Library modules; the `kvlab` binary (src/main.rs) is a thin CLI over them.

pub mod analysis;
pub mod cpu;
pub mod dag;
pub mod data;
pub mod decode;
pub mod device;
pub mod error;
pub mod eval;
pub mod kv;
pub mod loaded;
pub mod model;
pub mod model_source;
#[cfg(test)]
pub mod mutation;
pub mod plot;
pub mod report;
pub mod stages;
pub mod store;
pub mod table;
#[cfg(test)]
pub mod testutil;
pub mod threads;
pub mod tokenizer;
pub mod toml_file;
pub mod train;

pub use error::{Error, Result};

/// The devices this build can run on, recorded in provenance (not in keys:
/// see `device` and `store::hashing::stage_preimage`).
pub fn device_name() -> &'static str {
    if cfg!(feature = "cuda") {
        "cuda"
    } else {
        "cpu"
    }
}
