//! Helpers shared by unit tests.

use std::path::{Path, PathBuf};

/// The real SmolLM2-135M-Instruct Q4_1 GGUF: `$KVLAB_SMOLLM2_GGUF`, else
/// `<CARGO_MANIFEST_DIR>/target/models/SmolLM2-135M-Instruct.Q4_1.gguf`.
/// Panics if absent: tests that need the model must not silently pass.
pub fn smollm2_gguf() -> PathBuf {
    let path = std::env::var_os("KVLAB_SMOLLM2_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        });
    assert!(
        path.is_file(),
        "SmolLM2 GGUF not found at {} (set KVLAB_SMOLLM2_GGUF to its path)",
        path.display()
    );
    path
}
