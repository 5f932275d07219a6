//! The GGUF file a one-off command's model flag names.

use kvlab::error::input_err;
use std::path::{Path, PathBuf};

pub(crate) fn gguf_of(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_dir() {
        anyhow::bail!(input_err(path.display(), "--model", "generate/perplexity need a GGUF (its tokenizer); HF directories are loaded by the engine API only"));
    }
    Ok(path.to_path_buf())
}
