//! Prefill attention on AVX-512 in tiles: `prefill_attn`'s task (one KV
//! head, a block of queries) with the dot products done 16 keys at a time.
//!
//! A KV head's keys are transposed once into blocks `[hd, 16]`; a query
//! row's 16 scores against a block are then `hd` broadcast-FMAs into one
//! register, and 8 query rows share every key load. The value sum keeps 4
//! rows' outputs in registers while the value rows stream past. Masking
//! follows `visible` per query: scores of hidden keys become
//! −inf before the shared softmax step.

use std::arch::x86_64::*;

use super::kv_elem::KvElem;
use super::softmax::avx512::exp_shifted;
use super::visible::visible;

/// Keys per block.
const KB: usize = 16;

/// One KV head's keys `[len, hd]` as blocks `[len/16, hd, 16]`, zero padded.
pub fn transpose_keys<E: KvElem>(k: &[E], len: usize, hd: usize) -> Vec<f32> {
    let mut kt = vec![0f32; len.div_ceil(KB) * hd * KB];
    for (j, key) in k[..len * hd].chunks_exact(hd).enumerate() {
        let blk = &mut kt[(j / KB) * hd * KB..][..hd * KB];
        for (d, &x) in E::to_f32s(key).iter().enumerate() {
            blk[d * KB + j % KB] = x;
        }
    }
    kt
}

/// Scores of R query rows against `nblocks` key blocks.
#[inline(always)]
unsafe fn scores<const HC: usize, const R: usize>(
    q: [*const f32; R],
    kt: *const f32,
    nblocks: usize,
    s: [*mut f32; R],
) {
    let hd = 16 * HC;
    for b in 0..nblocks {
        let kb = kt.add(b * hd * KB);
        let mut a0 = [_mm512_setzero_ps(); R];
        let mut a1 = [_mm512_setzero_ps(); R];
        for d in (0..hd).step_by(2) {
            let k0 = _mm512_loadu_ps(kb.add(d * KB));
            let k1 = _mm512_loadu_ps(kb.add((d + 1) * KB));
            for r in 0..R {
                a0[r] = _mm512_fmadd_ps(_mm512_set1_ps(*q[r].add(d)), k0, a0[r]);
                a1[r] = _mm512_fmadd_ps(_mm512_set1_ps(*q[r].add(d + 1)), k1, a1[r]);
            }
        }
        for r in 0..R {
            _mm512_storeu_ps(s[r].add(b * KB), _mm512_add_ps(a0[r], a1[r]));
        }
    }
}

/// Rows `r0..r0+R`: `out[r] = z[r] * Σ_c p[r][c] v[c]` over `nv` value
/// rows, where `p[r]` is row r of `s` (`n` wide).
#[inline(always)]
#[allow(clippy::needless_range_loop, clippy::too_many_arguments)] // register arrays indexed in step
unsafe fn weighted_values<E: KvElem, const HC: usize, const R: usize>(
    s: *const f32,
    n: usize,
    z: &[f32],
    r0: usize,
    v: *const E,
    nv: usize,
    out: *mut f32,
) {
    let hd = 16 * HC;
    let mut acc = [[_mm512_setzero_ps(); HC]; R];
    for c in 0..nv {
        let val = v.add(c * hd);
        let vr: [__m512; HC] = std::array::from_fn(|i| E::load16(val.add(16 * i)));
        for r in 0..R {
            let pb = _mm512_set1_ps(*s.add((r0 + r) * n + c));
            for i in 0..HC {
                acc[r][i] = _mm512_fmadd_ps(pb, vr[i], acc[r][i]);
            }
        }
    }
    for r in 0..R {
        let zr = _mm512_set1_ps(z[r0 + r]);
        for i in 0..HC {
            _mm512_storeu_ps(
                out.add((r0 + r) * hd + 16 * i),
                _mm512_mul_ps(acc[r][i], zr),
            );
        }
    }
}

/// Same contract as `prefill_attn::block` (queries `qs` `[q_range, n_rep,
/// hd]` of one KV head → `out`), with the head's keys given transposed.
///
/// # Safety
/// The CPU must have AVX-512F and FMA. Slice lengths are asserted.
#[target_feature(enable = "avx512f,fma")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn block<E: KvElem, const HC: usize>(
    qs: &[f32],
    n_rep: usize,
    q_range: std::ops::Range<usize>,
    q_pos: &[i64],
    k_pos: &[i64],
    window: Option<usize>,
    kt: &[f32],
    v: &[E],
    out: &mut [f32],
) {
    let hd = 16 * HC;
    let l = k_pos.len();
    let rows = q_range.len() * n_rep;
    assert!(qs.len() >= rows * hd && out.len() >= rows * hd && v.len() >= l * hd);
    assert!(kt.len() >= l.div_ceil(KB) * hd * KB);
    // Keys some query of the block may see: a superset, masked exactly below.
    let qp = &q_pos[q_range.clone()];
    let (qmin, qmax) = (*qp.iter().min().unwrap(), *qp.iter().max().unwrap());
    let maybe = |j: usize| {
        let kp = k_pos[j];
        kp <= qmax && window.is_none_or(|w| qmin - kp < w as i64)
    };
    let Some(lo) = (0..l).find(|&j| maybe(j)) else {
        out[..rows * hd].fill(0.0);
        return;
    };
    let hi = (lo..l).rev().find(|&j| maybe(j)).unwrap() + 1;
    let (blo, bhi) = (lo / KB, hi.div_ceil(KB));
    let n = (bhi - blo) * KB;
    let j0 = blo * KB;
    let mut s = vec![0f32; rows * n];
    let sp = s.as_mut_ptr();
    let qrow = |r: usize| qs.as_ptr().add(r * hd);
    let srow = |r: usize| sp.add(r * n);
    let ktp = kt.as_ptr().add(blo * hd * KB);
    let mut r = 0;
    while r < rows {
        match rows - r {
            8.. => scores::<HC, 8>(
                std::array::from_fn(|i| qrow(r + i)),
                ktp,
                bhi - blo,
                std::array::from_fn(|i| srow(r + i)),
            ),
            _ => scores::<HC, 1>([qrow(r)], ktp, bhi - blo, [srow(r)]),
        }
        r += if rows - r >= 8 { 8 } else { 1 };
    }
    let mut z = vec![0f32; rows];
    let mut hidden = vec![false; n];
    for (qi, &p) in qp.iter().enumerate() {
        for (c, h) in hidden.iter_mut().enumerate() {
            let j = j0 + c;
            *h = j >= l || !visible(p, k_pos[j], window);
        }
        for rep in 0..n_rep {
            let row = qi * n_rep + rep;
            let sr = &mut s[row * n..(row + 1) * n];
            for (x, &h) in sr.iter_mut().zip(&hidden) {
                if h {
                    *x = f32::NEG_INFINITY;
                }
            }
            let (_, sum) = exp_shifted(sr);
            z[row] = if sum > 0.0 {
                1.0 / sum
            } else {
                sr.fill(0.0); // sees no key: zeros, not -inf
                0.0
            };
        }
    }
    let nv = hi - j0;
    let vp = v.as_ptr().add(j0 * hd);
    let (sp, op) = (s.as_ptr(), out.as_mut_ptr());
    // 4 rows' sums fill 16 registers at hd 64; 2 rows at hd 128.
    let mut r = 0;
    while r < rows {
        r += match rows - r {
            4.. if HC <= 4 => {
                weighted_values::<E, HC, 4>(sp, n, &z, r, vp, nv, op);
                4
            }
            2.. => {
                weighted_values::<E, HC, 2>(sp, n, &z, r, vp, nv, op);
                2
            }
            _ => {
                weighted_values::<E, HC, 1>(sp, n, &z, r, vp, nv, op);
                1
            }
        };
    }
}
