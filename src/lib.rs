//! kvlab: a content-addressed workbench for KV-cache research.
//!
//! Library modules; the `kvlab` binary (src/main.rs) is a thin CLI over them.

pub mod error;
pub mod store;
pub mod dag;
pub mod stages;
pub mod tokenizer;
pub mod data;
pub mod model;
pub mod model_source;
pub mod kv;
pub mod decode;
pub mod eval;
pub mod analysis;
pub mod plot;
pub mod table;
pub mod threads;

pub use error::{Error, Result};

/// The compute device this build targets, recorded in keys and provenance.
pub fn device_name() -> &'static str {
    if cfg!(feature = "cuda") {
        "cuda"
    } else {
        "cpu"
    }
}
