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
pub mod kv;
pub mod decode;
pub mod eval;
pub mod analysis;
pub mod plot;
pub mod table;
pub mod threads;
#[cfg(test)]
pub mod testutil;

pub use error::{Error, Result};
