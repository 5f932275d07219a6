//! Attention of several new queries over the cache, fused: per KV head and
//! block of queries (a rayon task), each query scores only the keys it may
//! see (position rule of `visible`), takes their softmax and sums the
//! value rows — no `[heads, T, L]` mask, score or probability tensors, and
//! the causal half of the work is skipped. Only for f32 caches without
//! observation; the n_rep query heads sharing a KV head read each key once.
//!
//! The crate is built for baseline x86-64 (SSE2); the hot loops are compiled
//! a second time with AVX2+FMA and picked at run time.

use rayon::prelude::*;

use super::kv_elem::KvElem;
use super::simd_level::SimdLevel;
use super::softmax::exp_shifted;
#[cfg(target_arch = "x86_64")]
use super::tiled_attn;
use super::visible::visible;

/// Queries per task.
const Q_BLOCK: usize = 16;

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Four independent 8-lane sums: short dependency chains.
    let mut s = [[0f32; 8]; 4];
    let (ca, cb) = (a.chunks_exact(32), b.chunks_exact(32));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for c in 0..4 {
            for i in 0..8 {
                s[c][i] += x[c * 8 + i] * y[c * 8 + i];
            }
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    let mut t = [0f32; 8];
    for i in 0..8 {
        t[i] = (s[0][i] + s[1][i]) + (s[2][i] + s[3][i]);
    }
    t.iter().sum::<f32>() + tail
}

/// Explicit FMA kernels (LLVM does not fuse `a * b + c` on its own).
#[cfg(target_arch = "x86_64")]
pub(crate) mod simd {
    use std::arch::x86_64::*;

    /// `a · b`, lengths equal and a multiple of 8.
    #[inline(always)]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len()) / 8;
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 4 <= n {
            for (c, a) in acc.iter_mut().enumerate() {
                let x = _mm256_loadu_ps(pa.add((i + c) * 8));
                let y = _mm256_loadu_ps(pb.add((i + c) * 8));
                *a = _mm256_fmadd_ps(x, y, *a);
            }
            i += 4;
        }
        while i < n {
            let x = _mm256_loadu_ps(pa.add(i * 8));
            let y = _mm256_loadu_ps(pb.add(i * 8));
            acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
            i += 1;
        }
        let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    /// `o = Σ_c p[c] * v[vis[c]]` for 64-wide rows, the sum held in registers.
    #[inline(always)]
    pub unsafe fn pv64(p: &[f32], vis: &[usize], v: &[f32], o: &mut [f32]) {
        assert!(o.len() == 64 && p.len() == vis.len());
        let mut acc = [_mm256_setzero_ps(); 8];
        for (&pc, &j) in p.iter().zip(vis) {
            let row = v[j * 64..(j + 1) * 64].as_ptr();
            let pv = _mm256_set1_ps(pc);
            for (i, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(pv, _mm256_loadu_ps(row.add(i * 8)), *a);
            }
        }
        for (i, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(o.as_mut_ptr().add(i * 8), *a);
        }
    }

    /// `o += p * x`, lengths equal and a multiple of 8.
    #[inline(always)]
    pub unsafe fn axpy(p: f32, x: &[f32], o: &mut [f32]) {
        let n = x.len().min(o.len()) / 8;
        let pv = _mm256_set1_ps(p);
        let (px, po) = (x.as_ptr(), o.as_mut_ptr());
        for i in 0..n {
            let y = _mm256_loadu_ps(po.add(i * 8));
            _mm256_storeu_ps(
                po.add(i * 8),
                _mm256_fmadd_ps(pv, _mm256_loadu_ps(px.add(i * 8)), y),
            );
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) mod simd {
    pub unsafe fn pv64(_: &[f32], _: &[usize], _: &[f32], _: &mut [f32]) {
        unreachable!("AVX only")
    }
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        super::dot(a, b)
    }
    pub unsafe fn axpy(p: f32, x: &[f32], o: &mut [f32]) {
        o.iter_mut().zip(x).for_each(|(a, &x)| *a += p * x);
    }
}

/// One task: queries `qs` `[q_range, n_rep, hd]` of one KV head; writes
/// `[q_range, n_rep, hd]` into `out`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn block<const AVX: bool>(
    qs: &[f32],
    n_rep: usize,
    hd: usize,
    q_range: std::ops::Range<usize>,
    q_pos: &[i64],
    k_pos: &[i64],
    window: Option<usize>,
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) {
    let l = k_pos.len();
    let mut vis: Vec<usize> = Vec::with_capacity(l);
    let mut s = vec![0f32; n_rep * l];
    for (qi, i) in q_range.enumerate() {
        let qp = q_pos[i];
        vis.clear();
        vis.extend((0..l).filter(|&j| visible(qp, k_pos[j], window)));
        let n = vis.len();
        for (c, &j) in vis.iter().enumerate() {
            let key = &k[j * hd..(j + 1) * hd];
            for r in 0..n_rep {
                let qrow = &qs[(qi * n_rep + r) * hd..(qi * n_rep + r + 1) * hd];
                s[r * n + c] = if AVX {
                    // SAFETY: AVX is only true inside `block_avx2`.
                    unsafe { simd::dot(qrow, key) }
                } else {
                    dot(qrow, key)
                };
            }
        }
        let mut z = vec![0f32; n_rep];
        for r in 0..n_rep {
            let (_, sum) = exp_shifted(&mut s[r * n..(r + 1) * n]);
            z[r] = if sum > 0.0 { 1.0 / sum } else { 0.0 };
        }
        let o = &mut out[qi * n_rep * hd..(qi + 1) * n_rep * hd];
        o.iter_mut().for_each(|a| *a = 0.0);
        if AVX && hd == 64 {
            for r in 0..n_rep {
                // SAFETY: as above; rows are 64 wide.
                unsafe {
                    simd::pv64(
                        &s[r * n..(r + 1) * n],
                        &vis,
                        v,
                        &mut o[r * hd..(r + 1) * hd],
                    )
                };
            }
        }
        for (c, &j) in vis.iter().enumerate() {
            if AVX && hd == 64 {
                break;
            }
            let val = &v[j * hd..(j + 1) * hd];
            for r in 0..n_rep {
                let p = s[r * n + c];
                let orow = &mut o[r * hd..(r + 1) * hd];
                if AVX {
                    // SAFETY: as above.
                    unsafe { simd::axpy(p, val, orow) };
                } else {
                    for (a, &x) in orow.iter_mut().zip(val) {
                        *a += p * x;
                    }
                }
            }
        }
        for r in 0..n_rep {
            o[r * hd..(r + 1) * hd].iter_mut().for_each(|a| *a *= z[r]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn block_avx2(
    qs: &[f32],
    n_rep: usize,
    hd: usize,
    q_range: std::ops::Range<usize>,
    q_pos: &[i64],
    k_pos: &[i64],
    window: Option<usize>,
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) {
    block::<true>(qs, n_rep, hd, q_range, q_pos, k_pos, window, k, v, out)
}

/// `q` `[n_heads, t, hd]` (already scaled by 1/sqrt(hd)) at positions
/// `q_pos`; KV head h has rows `k_at(h)`/`v_at(h)` `[len, hd]` at positions
/// `k_pos_at(h)`. Returns `[t, n_heads * hd]` (token-major, the layout the
/// output projection reads). A query that sees no key gets zeros. Kernels
/// up to `level` are used (`SimdLevel::best()` outside tests).
#[allow(clippy::too_many_arguments)]
pub fn prefill_attention<'a, E: KvElem>(
    level: SimdLevel,
    q: &[f32],
    n_heads: usize,
    n_kv: usize,
    hd: usize,
    q_pos: &[i64],
    window: Option<usize>,
    k_pos_at: impl Fn(usize) -> &'a [i64] + Sync,
    k_at: impl Fn(usize) -> &'a [E] + Sync,
    v_at: impl Fn(usize) -> &'a [E] + Sync,
) -> Vec<f32> {
    let t = q_pos.len();
    let n_rep = n_heads / n_kv;
    let nqb = t.div_ceil(Q_BLOCK);
    #[cfg(target_arch = "x86_64")]
    let tiled = level >= SimdLevel::Avx512 && (hd == 64 || hd == 128);
    #[cfg(not(target_arch = "x86_64"))]
    let tiled = {
        let _ = level; // only x86-64 has kernels above scalar
        false
    };
    // The tiled kernel reads each head's keys transposed; done once per head.
    #[cfg(target_arch = "x86_64")]
    let kts: Vec<Vec<f32>> = if tiled {
        (0..n_kv)
            .into_par_iter()
            .map(|h| tiled_attn::transpose_keys(k_at(h), k_pos_at(h).len(), hd))
            .collect()
    } else {
        Vec::new()
    };
    // The other kernels read f32 rows (borrowed for an f32 cache).
    let rows: Vec<_> = if tiled {
        Vec::new()
    } else {
        (0..n_kv)
            .map(|h| (E::to_f32s(k_at(h)), E::to_f32s(v_at(h))))
            .collect()
    };
    let parts: Vec<Vec<f32>> = (0..n_kv * nqb)
        .into_par_iter()
        .map(|task| {
            let (h, qb) = (task / nqb, task % nqb);
            let qr = qb * Q_BLOCK..((qb + 1) * Q_BLOCK).min(t);
            let mut qs = Vec::with_capacity(qr.len() * n_rep * hd);
            for i in qr.clone() {
                for r in 0..n_rep {
                    let at = ((h * n_rep + r) * t + i) * hd;
                    qs.extend_from_slice(&q[at..at + hd]);
                }
            }
            let mut out = vec![0f32; qr.len() * n_rep * hd];
            let kp = k_pos_at(h);
            #[cfg(target_arch = "x86_64")]
            if tiled {
                let v = v_at(h);
                // SAFETY: the CPU has AVX-512F (checked above); hd is 64 or 128.
                unsafe {
                    if hd == 64 {
                        tiled_attn::block::<E, 4>(
                            &qs, n_rep, qr, q_pos, kp, window, &kts[h], v, &mut out,
                        )
                    } else {
                        tiled_attn::block::<E, 8>(
                            &qs, n_rep, qr, q_pos, kp, window, &kts[h], v, &mut out,
                        )
                    }
                };
                return out;
            }
            let (k, v) = (&rows[h].0[..], &rows[h].1[..]);
            #[cfg(target_arch = "x86_64")]
            if level >= SimdLevel::Avx2 && hd.is_multiple_of(8) {
                // SAFETY: the CPU has the features (checked above).
                unsafe { block_avx2(&qs, n_rep, hd, qr, q_pos, kp, window, k, v, &mut out) };
                return out;
            }
            block::<false>(&qs, n_rep, hd, qr, q_pos, kp, window, k, v, &mut out);
            out
        })
        .collect();
    let mut out = vec![0f32; t * n_heads * hd];
    for (task, part) in parts.iter().enumerate() {
        let (h, qb) = (task / nqb, task % nqb);
        let w = n_rep * hd;
        for (qi, row) in part.chunks_exact(w).enumerate() {
            let i = qb * Q_BLOCK + qi;
            let at = i * n_heads * hd + h * w;
            out[at..at + w].copy_from_slice(row);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_data::{assert_same, softmax, uniform, Stored};

    fn attend<E: KvElem>(
        level: SimdLevel,
        q: &[f32],
        (nh, nkv, hd, len): (usize, usize, usize, usize),
        (q_pos, window, kp): (&[i64], Option<usize>, &[Vec<i64>]),
        k: &[E],
        v: &[E],
    ) -> Vec<f32> {
        let head = |h: usize| h * len * hd..(h + 1) * len * hd;
        let (k_at, v_at) = (|h| &k[head(h)], |h| &v[head(h)]);
        prefill_attention(level, q, nh, nkv, hd, q_pos, window, |h| &kp[h], k_at, v_at)
    }

    #[test]
    fn matches_naive_masked_attention() {
        for hd in [64, 128] {
            let (nh, nkv, t, past) = (6, 2, 37, 11);
            let len = past + t;
            let q = uniform(7, nh * t * hd, 0.5);
            let (ks, vs) = Stored::kv(8, nkv * len * hd);
            let (k, v) = (&ks.f32, &vs.f32);
            let shape = (nh, nkv, hd, len);
            // head 1's keys at shifted positions (per-head layouts), gaps included
            let kp: Vec<Vec<i64>> = (0..nkv)
                .map(|h| (0..len as i64).map(|j| j * (1 + h as i64)).collect())
                .collect();
            let q_pos: Vec<i64> = (past as i64..len as i64).collect();
            for (window, level) in [None, Some(9)]
                .into_iter()
                .flat_map(|w| SimdLevel::available().into_iter().map(move |l| (w, l)))
            {
                let at = (&q_pos[..], window, &kp[..]);
                let got = attend(level, &q, shape, at, k, v);
                let got16 = attend(level, &q, shape, at, &ks.f16, &vs.f16);
                assert_same(&got, &got16, "f32 vs f16 cache");
                let gb = attend(level, &q, shape, at, &ks.bf16, &vs.bf16);
                let gr = attend(level, &q, shape, at, &ks.bf16_f32, &vs.bf16_f32);
                assert_same(&gb, &gr, "bf16 vs f32 cache");
                for qh in 0..nh {
                    let h = qh / (nh / nkv);
                    for i in 0..t {
                        let vis: Vec<usize> = (0..len)
                            .filter(|&j| visible(q_pos[i], kp[h][j], window))
                            .collect();
                        let sc: Vec<f32> = vis
                            .iter()
                            .map(|&j| {
                                (0..hd)
                                    .map(|d| q[(qh * t + i) * hd + d] * k[(h * len + j) * hd + d])
                                    .sum()
                            })
                            .collect();
                        let p = softmax(&sc);
                        for d in 0..hd {
                            // a query that sees no key gets zeros (an empty sum)
                            let want: f32 = vis
                                .iter()
                                .zip(&p)
                                .map(|(&j, p)| p * v[(h * len + j) * hd + d])
                                .sum();
                            let g = got[i * nh * hd + qh * hd + d];
                            assert!(
                                (g - want).abs() < 1e-5,
                                "{level:?} hd {hd} head {qh} q {i} dim {d}: {g} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }
}
