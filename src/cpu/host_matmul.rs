//! The tensor entry of the CPU matmuls (`qmatmul`, `block_matmul`): checks
//! the width, hands the kernel the input as one contiguous f32 slice and
//! wraps its `[T, rows]` output back into a tensor.

use candle_core::{DType, Device, Storage, Tensor};

use crate::error::{other, Result};

/// `x` `[T, cols]` (any float dtype, on the CPU) -> `[T, rows]` f32, with
/// `kernel(x, T)` computing the row-major output.
pub fn forward_rows(
    x: &Tensor,
    rows: usize,
    cols: usize,
    kernel: impl FnOnce(&[f32], usize) -> Vec<f32>,
) -> Result<Tensor> {
    let (t, k) = x.dims2()?;
    if k != cols {
        return Err(other(format!(
            "quantized matmul: input width {k}, weight {rows}x{cols}"
        )));
    }
    let x = x.to_dtype(DType::F32)?.contiguous()?;
    let out = {
        let (st, layout) = x.storage_and_layout();
        let Storage::Cpu(c) = &*st else {
            return Err(other("quantized matmul: CPU tensors only"));
        };
        let off = layout.start_offset();
        kernel(&c.as_slice::<f32>()?[off..off + t * k], t)
    };
    Ok(Tensor::from_vec(out, (t, rows), &Device::Cpu)?)
}
