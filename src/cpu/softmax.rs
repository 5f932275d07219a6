//! The softmax row step both attention paths share: `x ← exp(x − max)` in
//! place, returning the max and the sum. libm's `expf` is a call per element
//! that LLVM cannot vectorize — a third of decode attention's time at 1,024
//! keys — so with AVX-512 the exponential is evaluated 16 lanes at a time
//! (range reduction by ln 2, degree-6 polynomial, `vscalefps`; relative
//! error ~2e-7, zero below e^-103).

use super::simd_level::SimdLevel;

/// `x ← exp(x − max(x))`; returns `(max, Σ x)`. An empty row gives
/// `(-inf, 0)`.
pub fn exp_shifted(row: &mut [f32]) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if SimdLevel::best() >= SimdLevel::Avx512 {
        // SAFETY: the CPU has AVX-512F (checked).
        return unsafe { avx512::exp_shifted(row) };
    }
    exp_shifted_scalar(row)
}

fn exp_shifted_scalar(row: &mut [f32]) -> (f32, f32) {
    let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    if m == f32::NEG_INFINITY {
        return (m, 0.0);
    }
    let mut z = 0f32;
    for x in row.iter_mut() {
        *x = (*x - m).exp();
        z += *x;
    }
    (m, z)
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use std::arch::x86_64::*;

    /// e^x for x ≤ 0 (larger x are not needed after subtracting the max).
    #[inline(always)]
    pub unsafe fn exp(x: __m512) -> __m512 {
        let live = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, _mm512_set1_ps(-103.0));
        let x = _mm512_max_ps(x, _mm512_set1_ps(-103.0));
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
        );
        // x - n ln2 in two steps: ln2's high part is exact in a few bits.
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm512_set1_ps(1.0 / 720.0);
        for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        _mm512_maskz_mov_ps(live, _mm512_scalef_ps(p, n))
    }

    #[target_feature(enable = "avx512f,fma")]
    pub unsafe fn exp_shifted(row: &mut [f32]) -> (f32, f32) {
        let n = row.len();
        let p = row.as_mut_ptr();
        let full = n / 16 * 16;
        let tail: __mmask16 = ((1u32 << (n - full)) - 1) as __mmask16;
        let mut mv = _mm512_set1_ps(f32::NEG_INFINITY);
        for i in (0..full).step_by(16) {
            mv = _mm512_max_ps(mv, _mm512_loadu_ps(p.add(i)));
        }
        let t = _mm512_mask_loadu_ps(_mm512_set1_ps(f32::NEG_INFINITY), tail, p.add(full));
        let m = _mm512_reduce_max_ps(_mm512_max_ps(mv, t));
        if m == f32::NEG_INFINITY {
            return (m, 0.0);
        }
        let mb = _mm512_set1_ps(m);
        let mut zv = _mm512_setzero_ps();
        for i in (0..full).step_by(16) {
            let e = exp(_mm512_sub_ps(_mm512_loadu_ps(p.add(i)), mb));
            _mm512_storeu_ps(p.add(i), e);
            zv = _mm512_add_ps(zv, e);
        }
        if tail != 0 {
            let x = _mm512_mask_loadu_ps(mb, tail, p.add(full));
            let e = _mm512_maskz_mov_ps(tail, exp(_mm512_sub_ps(x, mb)));
            _mm512_mask_storeu_ps(p.add(full), tail, e);
            zv = _mm512_add_ps(zv, e);
        }
        (m, _mm512_reduce_add_ps(zv))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_libm_softmax() {
        for n in [0usize, 1, 5, 16, 37, 300] {
            let mut a: Vec<f32> = (0..n)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.9)
                .collect();
            if n > 3 {
                a[2] = f32::NEG_INFINITY;
            }
            let mut b = a.clone();
            let (ma, za) = exp_shifted(&mut a);
            let (mb, zb) = exp_shifted_scalar(&mut b);
            assert_eq!(ma, mb);
            assert!((za - zb).abs() <= 1e-6 * zb.max(1.0), "n={n}: {za} vs {zb}");
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= 1e-6 * y.max(1e-30), "{x} vs {y}");
            }
        }
    }
}
