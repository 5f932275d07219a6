//! Helpers shared by unit tests.

use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};

/// The largest absolute elementwise difference of two same-shape tensors.
pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.to_dtype(DType::F32).unwrap();
    let b = b.to_dtype(DType::F32).unwrap();
    assert_eq!(a.dims(), b.dims(), "shape mismatch");
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

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
