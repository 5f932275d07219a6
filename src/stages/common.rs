//! Helpers every stage file shares (kept out of mod.rs so that stage files
//! and the registry do not import each other).

use crate::dag::params::Params;
use crate::dag::stage::StageCtx;
use crate::error::Result;

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
