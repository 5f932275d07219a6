//! Quantized matmul `[T, K] x [N, K]^T -> [T, N]` for the GGUF block types
//! kvlab has no kernel of its own for — the K-quants (Q2_K..Q6_K, the bulk of
//! Q4_K_M files), Q4_0, Q5_1 — with candle's per-row dot products (AVX2
//! where candle has them: Q4_0 and every K-quant), split over output rows
//! on the rayon pool like `qmatmul`. Q4_K and Q6_K run on kvlab's kernels
//! (`q4k`, `q6k`), which share a super-block's decoding among 8 prompt
//! tokens.
//!
//! candle's own `QMatMul` runs these on its barrier pool, which kvlab's thread
//! policy leaves without workers (see `crate::threads`): one core. Splitting
//! them here keeps one pool and uses every core.

use candle_core::quantized::k_quants::{
    BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ5K, BlockQ5_1, BlockQ6K, GgmlType,
};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Tensor;
use rayon::prelude::*;

use super::host_matmul::forward_rows;
use super::out_ptr::OutPtr;
use super::qblock::{quantize_row_k, ActK, QK_K};
use super::{q4k, q6k};
use crate::error::{other, Result};

/// Tokens per tile, as in `qmatmul`: a tile's activation blocks stay in L2.
const TOKEN_TILE: usize = 64;

/// A weight matrix in its file blocks, 8-byte aligned so it can be read as
/// candle's block structs (alignment ≤ 4).
#[derive(Debug)]
pub struct BlockMatmul {
    dtype: GgmlDType,
    rows: usize,
    cols: usize,
    words: Vec<u64>,
}

/// `KVLAB_CANDLE_K=1`: Q4_K and Q6_K on candle's dot products (for
/// before/after measurements of kvlab's `q4k`, `q6k`).
fn candle_k() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("KVLAB_CANDLE_K").is_some())
}

/// Output rows split over the rayon pool in chunks (several per thread, so
/// a stalled thread's share is stolen), each chunk over tiles of tokens;
/// `row(r, tokens, out)` computes row `r` for `tokens`, `out(tt, v)` stores.
fn par_rows<F>(n: usize, t: usize, row: F) -> Vec<f32>
where
    F: Fn(usize, std::ops::Range<usize>, &mut dyn FnMut(usize, f32)) + Sync,
{
    let mut out = vec![0f32; t * n];
    let threads = rayon::current_num_threads().max(1);
    let chunk = if t == 1 {
        n.div_ceil(threads * 8).max(16)
    } else {
        32
    };
    let ptr = OutPtr(out.as_mut_ptr());
    (0..n.div_ceil(chunk)).into_par_iter().for_each(|c| {
        // Rebinding makes the closure capture the Send wrapper, not its raw pointer field.
        #[allow(clippy::redundant_locals)]
        let ptr = ptr;
        // SAFETY: (tt, r) belongs to this task only; in bounds.
        let store = |tt: usize, r: usize, v: f32| unsafe { *ptr.0.add(tt * n + r) = v };
        for t0 in (0..t).step_by(TOKEN_TILE) {
            for r in c * chunk..((c + 1) * chunk).min(n) {
                row(r, t0..(t0 + TOKEN_TILE).min(t), &mut |tt, v| {
                    store(tt, r, v)
                });
            }
        }
    });
    out
}

/// Whether `dt` runs here.
fn supported(dt: GgmlDType) -> bool {
    matches!(
        dt,
        GgmlDType::Q4_0
            | GgmlDType::Q5_1
            | GgmlDType::Q2K
            | GgmlDType::Q3K
            | GgmlDType::Q4K
            | GgmlDType::Q5K
            | GgmlDType::Q6K
    )
}

impl BlockMatmul {
    /// `None` when the format or device has no kernel here, or the rows are
    /// not whole blocks (or `KVLAB_CANDLE_QMATMUL` is set, as for `qmatmul`).
    pub fn new(q: &QTensor) -> Result<Option<Self>> {
        if std::env::var_os("KVLAB_CANDLE_QMATMUL").is_some()
            || !supported(q.dtype())
            || !q.device().is_cpu()
        {
            return Ok(None);
        }
        let (rows, cols) = q.shape().dims2()?;
        if cols % q.dtype().block_size() != 0 {
            return Ok(None);
        }
        Self::from_bytes(q.dtype(), rows, cols, &q.data()?).map(Some)
    }

    fn from_bytes(dtype: GgmlDType, rows: usize, cols: usize, bytes: &[u8]) -> Result<Self> {
        let want = rows * cols / dtype.block_size() * dtype.type_size();
        if bytes.len() != want {
            return Err(other(format!(
                "quantized weight: {} bytes for {rows}x{cols} {dtype:?}, want {want}",
                bytes.len()
            )));
        }
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        // SAFETY: `words` holds at least `bytes.len()` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), words.as_mut_ptr() as *mut u8, want)
        };
        Ok(BlockMatmul {
            dtype,
            rows,
            cols,
            words,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    fn bytes(&self) -> &[u8] {
        let n = self.rows * self.cols / self.dtype.block_size() * self.dtype.type_size();
        // SAFETY: `words` holds at least `n` initialised bytes.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr() as *const u8, n) }
    }

    /// The rows of `parts` one after another (fused projections); `None`
    /// unless formats and widths agree.
    pub fn concat(parts: &[&BlockMatmul]) -> Option<BlockMatmul> {
        let (dtype, cols) = (parts[0].dtype, parts[0].cols);
        if parts.iter().any(|p| p.dtype != dtype || p.cols != cols) {
            return None;
        }
        let bytes: Vec<u8> = parts
            .iter()
            .flat_map(|p| p.bytes().iter().copied())
            .collect();
        let rows = parts.iter().map(|p| p.rows).sum();
        Self::from_bytes(dtype, rows, cols, &bytes).ok()
    }

    /// `x` `[t, cols]` row-major -> `[t, rows]` row-major.
    pub fn matmul_slice(&self, x: &[f32], t: usize) -> Vec<f32> {
        assert_eq!(x.len(), t * self.cols);
        match self.dtype {
            GgmlDType::Q4_0 => self.run::<BlockQ4_0>(x, t),
            GgmlDType::Q5_1 => self.run::<BlockQ5_1>(x, t),
            GgmlDType::Q2K => self.run::<BlockQ2K>(x, t),
            GgmlDType::Q3K => self.run::<BlockQ3K>(x, t),
            GgmlDType::Q4K if !candle_k() => {
                self.run_k::<{ q4k::Q4K_BYTES }>(x, t, q4k::dot_rows::<1>, q4k::dot_rows::<8>)
            }
            GgmlDType::Q6K if !candle_k() => {
                self.run_k::<{ q6k::Q6K_BYTES }>(x, t, q6k::dot_rows::<1>, q6k::dot_rows::<8>)
            }
            GgmlDType::Q4K => self.run::<BlockQ4K>(x, t),
            GgmlDType::Q5K => self.run::<BlockQ5K>(x, t),
            GgmlDType::Q6K => self.run::<BlockQ6K>(x, t),
            dt => unreachable!("{dt:?} is not built here"),
        }
    }

    fn run<T: GgmlType>(&self, x: &[f32], t: usize) -> Vec<f32> {
        debug_assert_eq!(T::DTYPE, self.dtype);
        debug_assert!(std::mem::align_of::<T>() <= 8);
        let (n, k) = (self.rows, self.cols);
        let nb = k / T::BLCK_SIZE;
        // SAFETY: `words` is 8-aligned and holds n·nb blocks of T's size
        // (checked in `from_bytes`); T is a `repr(C)` struct of plain bytes.
        let w: &[T] =
            unsafe { std::slice::from_raw_parts(self.words.as_ptr() as *const T, n * nb) };
        let mut xq = vec![T::VecDotType::zeros(); t * nb];
        let quantize = |(o, r): (&mut [T::VecDotType], &[f32])| T::VecDotType::from_float(r, o);
        if t >= 8 {
            xq.par_chunks_mut(nb)
                .zip(x.par_chunks(k))
                .for_each(quantize);
        } else {
            xq.chunks_mut(nb).zip(x.chunks(k)).for_each(quantize);
        }
        par_rows(n, t, |r, tokens, out| {
            let wr = &w[r * nb..(r + 1) * nb];
            for tt in tokens {
                out(tt, T::vec_dot(k, wr, &xq[tt * nb..(tt + 1) * nb]));
            }
        })
    }

    /// Q4_K and Q6_K on kvlab's kernels (`q4k`, `q6k`): 8 tokens share a
    /// row's decoding.
    fn run_k<const BYTES: usize>(
        &self,
        x: &[f32],
        t: usize,
        dot1: fn(&[u8], [&[ActK]; 1]) -> [f32; 1],
        dot8: fn(&[u8], [&[ActK]; 8]) -> [f32; 8],
    ) -> Vec<f32> {
        let (n, k) = (self.rows, self.cols);
        let nsb = k / QK_K;
        let mut xq = vec![ActK::default(); t * nsb];
        if t >= 8 {
            xq.par_chunks_mut(nsb)
                .zip(x.par_chunks(k))
                .for_each(|(o, r)| quantize_row_k(r, o));
        } else {
            for (o, r) in xq.chunks_mut(nsb).zip(x.chunks(k)) {
                quantize_row_k(r, o);
            }
        }
        let bytes = self.bytes();
        let rb = nsb * BYTES;
        let x_at = |tt: usize| &xq[tt * nsb..(tt + 1) * nsb];
        par_rows(n, t, |r, tokens, out| {
            let wr = &bytes[r * rb..(r + 1) * rb];
            let mut tt = tokens.start;
            while tt + 8 <= tokens.end {
                let xs = std::array::from_fn(|i| x_at(tt + i));
                for (i, v) in dot8(wr, xs).into_iter().enumerate() {
                    out(tt + i, v);
                }
                tt += 8;
            }
            for tt in tt..tokens.end {
                out(tt, dot1(wr, [x_at(tt)])[0]);
            }
        })
    }

    /// `x` `[T, cols]` (any float dtype) -> `[T, rows]` f32.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        forward_rows(x, self.rows, self.cols, |x, t| self.matmul_slice(x, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::max_diff;
    use candle_core::quantized::QMatMul;
    use candle_core::Module;
    use candle_core::{DType, Device};

    /// Same numbers as candle's `QMatMul` (same dot products, same
    /// activation blocks) for every format but Q4_K/Q6_K, decode and prefill
    /// shapes, and after fusing two matrices.
    #[test]
    fn matches_candle_qmatmul() {
        let dev = Device::Cpu;
        for dt in [
            GgmlDType::Q4_0,
            GgmlDType::Q5_1,
            GgmlDType::Q2K,
            GgmlDType::Q3K,
            GgmlDType::Q4K,
            GgmlDType::Q5K,
            GgmlDType::Q6K,
        ] {
            let k = 512;
            let qs: Vec<std::sync::Arc<QTensor>> = [40usize, 24]
                .iter()
                .enumerate()
                .map(|(i, &rows)| {
                    let w = crate::cpu::test_data::uniform(11 + i as u64, rows * k, 1.0);
                    let w = Tensor::from_vec(w, (rows, k), &dev).unwrap();
                    std::sync::Arc::new(QTensor::quantize(&w, dt).unwrap())
                })
                .collect();
            let b = BlockMatmul::new(&qs[0]).unwrap().expect("kernel");
            let fused = BlockMatmul::concat(&[&b, &BlockMatmul::new(&qs[1]).unwrap().unwrap()])
                .expect("same format");
            let m0 = QMatMul::from_arc(qs[0].clone()).unwrap();
            let m1 = QMatMul::from_arc(qs[1].clone()).unwrap();
            for t in [1usize, 3, 70] {
                let x = crate::cpu::test_data::uniform(5 + t as u64, t * k, 1.0);
                let x = Tensor::from_vec(x, (t, k), &dev).unwrap();
                // Q4_K/Q6_K run on kvlab's kernels with the same 8-bit
                // activation blocks as candle's (and llama.cpp's) Q8_K: equal
                // up to the order of the f32 sums. (At 512 tokens candle's
                // QMatMul returned other sums, ~1e-2 off the exact product of
                // the quantized operands where kvlab's were ~1e-4: `t` stays
                // small here.)
                let tol = if matches!(dt, GgmlDType::Q4K | GgmlDType::Q6K) {
                    1e-3
                } else {
                    0.0
                };
                let want0 = m0.forward(&x).unwrap();
                let d = max_diff(&b.forward(&x).unwrap(), &want0);
                assert!(d <= tol, "{dt:?} t={t}: {d}");
                let want = Tensor::cat(&[want0, m1.forward(&x).unwrap()], 1).unwrap();
                let d = max_diff(&fused.forward(&x).unwrap(), &want);
                assert!(d <= tol, "{dt:?} fused t={t}: {d}");
            }
        }
    }

    #[test]
    fn other_formats_and_partial_blocks_are_not_taken() {
        let dev = Device::Cpu;
        let w = Tensor::zeros((4, 64), DType::F32, &dev).unwrap();
        let q8 = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
        assert!(BlockMatmul::new(&q8).unwrap().is_none());
        let bad = BlockMatmul::from_bytes(GgmlDType::Q4K, 2, 256, &[0; 100]);
        assert!(bad.is_err());
    }
}
