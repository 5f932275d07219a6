//! `[t, K] × [N, K]ᵀ` for a few rows `t` (decode, short verification) over
//! dense f32 weights: the f32 path's decode matmuls.
//!
//! candle hands these to `gemm`, whose AVX2 kernel streamed the weights at
//! ~10 GB/s on 2 cores (74% of an f32 decode step). A decode step reads every
//! weight once and does two flops per weight, so the fastest kernel is the
//! one that streams: 4 weight rows at a time, each 16-wide weight load used
//! by all `t` activation rows, rows split over the pool.

use rayon::prelude::*;

use super::out_ptr::OutPtr;
use super::simd_level::SimdLevel;

/// Activation rows handled in one pass (more: take candle's gemm).
pub const MAX_ROWS: usize = 4;

/// Weight rows per task.
const ROWS_PER_TASK: usize = 64;

/// True when `matvec` can run on this CPU for width `k`.
pub fn supports(k: usize) -> bool {
    k.is_multiple_of(16) && SimdLevel::best() >= SimdLevel::Avx512
}

/// `x` `[t, k]` row-major, `w` `[n, k]` row-major -> `[t, n]` row-major.
pub fn matvec(w: &[f32], n: usize, k: usize, x: &[f32], t: usize) -> Vec<f32> {
    assert!(supports(k) && (1..=MAX_ROWS).contains(&t));
    assert!(w.len() >= n * k && x.len() >= t * k);
    let mut out = vec![0f32; t * n];
    let ptr = OutPtr(out.as_mut_ptr());
    (0..n.div_ceil(ROWS_PER_TASK))
        .into_par_iter()
        .for_each(|c| {
            // Rebinding makes the closure capture the Send wrapper, not its raw pointer field.
            #[allow(clippy::redundant_locals)]
            let ptr = ptr;
            let rows = c * ROWS_PER_TASK..((c + 1) * ROWS_PER_TASK).min(n);
            // SAFETY: AVX-512F checked by `supports`; lengths asserted above;
            // rows `rows` of every output row belong to this task only.
            unsafe {
                match t {
                    1 => avx512::rows::<1>(w, k, x, rows, ptr.0, n),
                    2 => avx512::rows::<2>(w, k, x, rows, ptr.0, n),
                    3 => avx512::rows::<3>(w, k, x, rows, ptr.0, n),
                    _ => avx512::rows::<4>(w, k, x, rows, ptr.0, n),
                }
            }
        });
    out
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// Weight rows `rows` against T activation rows; writes `out[t * n + r]`.
    #[target_feature(enable = "avx512f,fma")]
    #[allow(clippy::needless_range_loop)] // register arrays indexed in step
    pub unsafe fn rows<const T: usize>(
        w: &[f32],
        k: usize,
        x: &[f32],
        rows: std::ops::Range<usize>,
        out: *mut f32,
        n: usize,
    ) {
        let (wp, xp) = (w.as_ptr(), x.as_ptr());
        let mut r = rows.start;
        while r < rows.end {
            let g = (rows.end - r).min(4);
            let mut acc = [[_mm512_setzero_ps(); T]; 4];
            for c in (0..k).step_by(16) {
                let xs: [__m512; T] = std::array::from_fn(|t| _mm512_loadu_ps(xp.add(t * k + c)));
                for i in 0..g {
                    let wv = _mm512_loadu_ps(wp.add((r + i) * k + c));
                    for t in 0..T {
                        acc[i][t] = _mm512_fmadd_ps(wv, xs[t], acc[i][t]);
                    }
                }
            }
            for i in 0..g {
                for t in 0..T {
                    *out.add(t * n + r + i) = _mm512_reduce_add_ps(acc[i][t]);
                }
            }
            r += g;
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    pub unsafe fn rows<const T: usize>(
        _: &[f32],
        _: usize,
        _: &[f32],
        _: std::ops::Range<usize>,
        _: *mut f32,
        _: usize,
    ) {
        unreachable!("`supports` is false off x86-64")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn matches_candle_matmul() {
        if !supports(64) {
            return;
        }
        let dev = Device::Cpu;
        for (n, k) in [(70usize, 64usize), (576, 1536)] {
            let w = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
            for t in 1..=MAX_ROWS {
                let x = Tensor::randn(0f32, 1.0, (t, k), &dev).unwrap();
                let want: Vec<f32> = x
                    .matmul(&w.t().unwrap())
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                let wv: Vec<f32> = w.flatten_all().unwrap().to_vec1().unwrap();
                let xv: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
                let got = matvec(&wv, n, k, &xv, t);
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    // sums of k products of unit normals: f32 rounding ~1e-6 * k
                    assert!(
                        (a - b).abs() < 1e-6 * k as f32,
                        "n={n} t={t} at {i}: {a} {b}"
                    );
                }
            }
        }
    }
}
