//! Decode attention's per-task kernel on AVX2 + F16C (CPUs without
//! AVX-512) for any head size that is a multiple of 8 (Qwen's 64 and 128,
//! Gemma's 256): the cache rows are read in place, f16/bf16 converted 8 lanes
//! at a time, instead of being copied to f32 first. Up to 4 query rows that
//! share the KV head are scored per key-row load; the value sums accumulate
//! in the (L1-resident) output rows.

use std::arch::x86_64::*;

use super::attn_partial::Partial;
use super::kv_elem::KvElem;
use super::softmax::exp_shifted;

/// Query rows scored together per key-row load.
const R: usize = 4;

/// Keys `range` of one KV head (`k`, `v`: that head's rows `[L, hd]`) for the
/// `q.len() / hd` query rows that share it.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C; `hd` is a multiple of 8.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn partial<E: KvElem>(
    q: &[f32],
    k: &[E],
    v: &[E],
    hd: usize,
    range: std::ops::Range<usize>,
) -> Partial {
    debug_assert_eq!(hd % 8, 0);
    let n_rep = q.len() / hd;
    let n = range.len();
    assert!(k.len() >= range.end * hd && v.len() >= range.end * hd);
    let (kp, vp, qp) = (
        k.as_ptr().add(range.start * hd),
        v.as_ptr().add(range.start * hd),
        q.as_ptr(),
    );
    let mut s = vec![0f32; n_rep * n];
    for j in 0..n {
        let key = kp.add(j * hd);
        for r0 in (0..n_rep).step_by(R) {
            let rows = (n_rep - r0).min(R);
            let mut acc = [_mm256_setzero_ps(); R];
            for c in (0..hd).step_by(8) {
                let kv = E::load8(key.add(c));
                for (r, a) in acc.iter_mut().enumerate().take(rows) {
                    let qv = _mm256_loadu_ps(qp.add((r0 + r) * hd + c));
                    *a = _mm256_fmadd_ps(qv, kv, *a);
                }
            }
            for (r, a) in acc.iter().enumerate().take(rows) {
                s[(r0 + r) * n + j] = hsum(*a);
            }
        }
    }
    let mut p = Partial {
        max: vec![f32::NEG_INFINITY; n_rep],
        sum: vec![0f32; n_rep],
        acc: vec![0f32; n_rep * hd],
    };
    for r in 0..n_rep {
        (p.max[r], p.sum[r]) = exp_shifted(&mut s[r * n..(r + 1) * n]);
    }
    let op = p.acc.as_mut_ptr();
    for j in 0..n {
        let val = vp.add(j * hd);
        for c in (0..hd).step_by(8) {
            let vv = E::load8(val.add(c));
            for r in 0..n_rep {
                let o = op.add(r * hd + c);
                let w = _mm256_set1_ps(*s.get_unchecked(r * n + j));
                _mm256_storeu_ps(o, _mm256_fmadd_ps(w, vv, _mm256_loadu_ps(o)));
            }
        }
    }
    p
}

#[inline(always)]
unsafe fn hsum(a: __m256) -> f32 {
    let x = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
    let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)))
}
