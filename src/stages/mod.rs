//! Stage kinds: one file each, thin glue between the runner and the library.
//!
//! A stage kind declares its inputs (roles), its defaults file
//! `stages/<kind>.toml` (the single source of defaults, compiled in), a
//! `resolve` hook that parses and validates its parameters, `run`, which
//! writes its outputs into the directory the runner hands it, and, for kinds
//! that work per item, `compute_item` (the contract is in `crate::dag::item`).
//! The DAG gets them as a value: [`registry`].
pub mod analyze;
pub mod chunk;
pub mod fetch;
pub mod generate;
pub mod perplexity;
pub mod plot;
pub mod tasks;

use crate::dag::params::Params;
pub use crate::dag::stage::{Registry, StageCtx, StageKind};
use crate::error::Result;

/// Every stage kind kvlab has.
pub fn registry() -> Registry {
    static KINDS: &[StageKind] = &[
        fetch::KIND,
        chunk::KIND,
        tasks::KIND,
        generate::KIND,
        perplexity::KIND,
        analyze::KIND,
        plot::KIND,
    ];
    Registry(KINDS)
}

pub fn find(kind: &str) -> Option<&'static StageKind> {
    registry().find(kind)
}

/// The `.gguf` file of the stage's `model` input.
pub fn model_file(ctx: &StageCtx) -> Result<std::path::PathBuf> {
    ctx.input_file("model", ".gguf")
}

/// `dtype` must name one of the engine's load modes, `kv_dtype` one of its
/// cache types.
pub fn check_dtype(p: &Params, dtype: &str, kv_dtype: &str) -> Result<()> {
    match crate::model_source::invalid_dtype(dtype, kv_dtype) {
        Some((field, msg)) => Err(p.err(field, msg)),
        None => Ok(()),
    }
}
