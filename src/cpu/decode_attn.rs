//! Attention of one new token over the whole cache, fused: for each KV head,
//! the n_rep query heads that share it are scored against each cached key
//! row in one pass (the row is loaded once), then the value rows are summed
//! with the softmax weights — no score tensor, no transposed copy of K.
//!
//! The keys are split into ranges handled as separate rayon tasks, each
//! keeping a running max and sum; the partial results are merged with the
//! usual log-sum-exp rescaling. Only for f32 caches and when every cached
//! key is visible (no mask), which is plain decoding.

use rayon::prelude::*;

use super::attn_partial::Partial;
use super::kv_elem::KvElem;
use super::simd_level::SimdLevel;
use super::softmax::exp_shifted;

/// Keys per task, at least; fewer keys are not worth a task.
const MIN_KEYS_PER_TASK: usize = 128;

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight lanes so LLVM keeps it in vector registers.
    let mut s = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            s[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    s.iter().sum::<f32>() + tail
}

/// AVX-512 form of `partial` for rows of `16 * HC` floats: R query rows at
/// a time keep their rows in registers while the keys stream past once
/// (each key row is loaded, and for f16 converted, once for all R), then
/// the value rows stream past once into R register sums.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn partial_avx512<E: KvElem, const HC: usize>(
    q: &[f32],
    k: &[E],
    v: &[E],
    range: std::ops::Range<usize>,
) -> Partial {
    let hd = 16 * HC;
    let n_rep = q.len() / hd;
    let n = range.len();
    assert!(k.len() >= range.end * hd && v.len() >= range.end * hd);
    let (kp, vp) = (
        k.as_ptr().add(range.start * hd),
        v.as_ptr().add(range.start * hd),
    );
    let mut p = Partial {
        max: vec![f32::NEG_INFINITY; n_rep],
        sum: vec![0f32; n_rep],
        acc: vec![0f32; n_rep * hd],
    };
    let mut s = vec![0f32; n_rep * n];
    let mut r = 0;
    while r < n_rep {
        let rows = (q.as_ptr(), kp, vp, n, s.as_mut_ptr());
        r += match n_rep - r {
            4.. if HC <= 4 => rows_avx512::<E, HC, 4>(rows, r, &mut p),
            3 if HC <= 4 => rows_avx512::<E, HC, 3>(rows, r, &mut p),
            2.. => rows_avx512::<E, HC, 2>(rows, r, &mut p),
            _ => rows_avx512::<E, HC, 1>(rows, r, &mut p),
        };
    }
    p
}

/// Query rows `r0..r0+R` of `partial_avx512`; `s` holds their scores (`n`
/// per row). Returns R.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::needless_range_loop, clippy::type_complexity)] // register arrays indexed in step
unsafe fn rows_avx512<E: KvElem, const HC: usize, const R: usize>(
    (q, kp, vp, n, s): (*const f32, *const E, *const E, usize, *mut f32),
    r0: usize,
    p: &mut Partial,
) -> usize {
    use std::arch::x86_64::*;
    let hd = 16 * HC;
    let qv: [[__m512; HC]; R] = std::array::from_fn(|r| {
        std::array::from_fn(|c| _mm512_loadu_ps(q.add((r0 + r) * hd + 16 * c)))
    });
    for j in 0..n {
        let key = kp.add(j * hd);
        let kv: [__m512; HC] = std::array::from_fn(|c| E::load16(key.add(16 * c)));
        for r in 0..R {
            let mut a = _mm512_mul_ps(qv[r][0], kv[0]);
            for c in 1..HC {
                a = _mm512_fmadd_ps(qv[r][c], kv[c], a);
            }
            *s.add((r0 + r) * n + j) = _mm512_reduce_add_ps(a);
        }
    }
    for r in 0..R {
        let row = std::slice::from_raw_parts_mut(s.add((r0 + r) * n), n);
        (p.max[r0 + r], p.sum[r0 + r]) = super::softmax::avx512::exp_shifted(row);
    }
    let mut o = [[_mm512_setzero_ps(); HC]; R];
    for j in 0..n {
        let val = vp.add(j * hd);
        let vv: [__m512; HC] = std::array::from_fn(|c| E::load16(val.add(16 * c)));
        for r in 0..R {
            let pb = _mm512_set1_ps(*s.add((r0 + r) * n + j));
            for c in 0..HC {
                o[r][c] = _mm512_fmadd_ps(pb, vv[c], o[r][c]);
            }
        }
    }
    for r in 0..R {
        for c in 0..HC {
            _mm512_storeu_ps(p.acc.as_mut_ptr().add((r0 + r) * hd + 16 * c), o[r][c]);
        }
    }
    R
}

/// Keys `range` of one KV head: `k`, `v` are that head's rows `[L, hd]`
/// (portable form; x86-64 has `decode_attn_avx2` and `partial_avx512`).
fn partial(q: &[f32], k: &[f32], v: &[f32], hd: usize, range: std::ops::Range<usize>) -> Partial {
    let n_rep = q.len() / hd;
    let n = range.len();
    // scores [n_rep, n]
    let mut s = vec![0f32; n_rep * n];
    for (j, key) in k[range.start * hd..range.end * hd]
        .chunks_exact(hd)
        .enumerate()
    {
        for r in 0..n_rep {
            s[r * n + j] = dot(&q[r * hd..(r + 1) * hd], key);
        }
    }
    let mut max = vec![f32::NEG_INFINITY; n_rep];
    let mut sum = vec![0f32; n_rep];
    for r in 0..n_rep {
        (max[r], sum[r]) = exp_shifted(&mut s[r * n..(r + 1) * n]);
    }
    let mut acc = vec![0f32; n_rep * hd];
    for (j, val) in v[range.start * hd..range.end * hd]
        .chunks_exact(hd)
        .enumerate()
    {
        for r in 0..n_rep {
            let p = s[r * n + j];
            for (a, &x) in acc[r * hd..(r + 1) * hd].iter_mut().zip(val) {
                *a += p * x;
            }
        }
    }
    Partial { max, sum, acc }
}

/// `q` `[n_heads, hd]` (already scaled by 1/sqrt(hd)); `k_at(h)`/`v_at(h)`
/// give KV head h's rows `[len, hd]`. Returns `[n_heads * hd]` (head-major,
/// the layout the output projection reads). Kernels up to `level` are used
/// (`SimdLevel::best()` outside tests).
#[allow(clippy::too_many_arguments)]
pub fn decode_attention<'a, E: KvElem>(
    level: SimdLevel,
    q: &[f32],
    n_heads: usize,
    n_kv: usize,
    hd: usize,
    len: usize,
    k_at: impl Fn(usize) -> &'a [E] + Sync,
    v_at: impl Fn(usize) -> &'a [E] + Sync,
) -> Vec<f32> {
    let n_rep = n_heads / n_kv;
    let threads = rayon::current_num_threads().max(1);
    // Enough tasks that each thread gets a few, if the keys allow it.
    let want = (2 * threads).div_ceil(n_kv);
    let splits = want.min(len.div_ceil(MIN_KEYS_PER_TASK)).max(1);
    let per = len.div_ceil(splits);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = level; // only x86-64 has kernels above scalar
    let parts: Vec<Partial> = (0..n_kv * splits)
        .into_par_iter()
        .map(|i| {
            let (h, sp) = (i / splits, i % splits);
            let r = (sp * per).min(len)..((sp + 1) * per).min(len);
            let qh = &q[h * n_rep * hd..(h + 1) * n_rep * hd];
            #[cfg(target_arch = "x86_64")]
            if level >= SimdLevel::Avx512 && (hd == 64 || hd == 128) {
                // SAFETY: the CPU has the features (checked above).
                return unsafe {
                    if hd == 64 {
                        partial_avx512::<E, 4>(qh, k_at(h), v_at(h), r)
                    } else {
                        partial_avx512::<E, 8>(qh, k_at(h), v_at(h), r)
                    }
                };
            }
            #[cfg(target_arch = "x86_64")]
            if level >= SimdLevel::Avx2 && hd.is_multiple_of(8) {
                // SAFETY: the CPU has AVX2, FMA and F16C (checked by `level`).
                return unsafe { super::decode_attn_avx2::partial(qh, k_at(h), v_at(h), hd, r) };
            }
            // The portable kernel reads the range as f32 (a copy for f16 caches).
            let k = E::to_f32s(&k_at(h)[r.start * hd..r.end * hd]);
            let v = E::to_f32s(&v_at(h)[r.start * hd..r.end * hd]);
            partial(qh, &k, &v, hd, 0..r.len())
        })
        .collect();
    let mut out = vec![0f32; n_heads * hd];
    for h in 0..n_kv {
        let ps = &parts[h * splits..(h + 1) * splits];
        for r in 0..n_rep {
            let m = ps
                .iter()
                .map(|p| p.max[r])
                .fold(f32::NEG_INFINITY, f32::max);
            let o = &mut out[(h * n_rep + r) * hd..(h * n_rep + r + 1) * hd];
            let mut z = 0f32;
            for p in ps.iter().filter(|p| p.max[r] > f32::NEG_INFINITY) {
                let c = (p.max[r] - m).exp();
                z += c * p.sum[r];
                for (a, &x) in o.iter_mut().zip(&p.acc[r * hd..(r + 1) * hd]) {
                    *a += c * x;
                }
            }
            if z > 0.0 {
                o.iter_mut().for_each(|a| *a /= z);
            }
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
        k: &[E],
        v: &[E],
    ) -> Vec<f32> {
        let head = |h: usize| h * len * hd..(h + 1) * len * hd;
        decode_attention(level, q, nh, nkv, hd, len, |h| &k[head(h)], |h| &v[head(h)])
    }

    #[test]
    fn matches_naive_softmax_attention() {
        // every kernel this CPU runs; n_rep 2 to 5; rows of 16, 24, 64, 128, 256
        for (hd, nh, len) in [
            (16, 6, 700),
            (64, 6, 700),
            (64, 6, 7),
            (64, 8, 1),
            (128, 6, 700),
            (256, 4, 300),
            (24, 10, 9),
        ] {
            let nkv = 2;
            let q = uniform(1, nh * hd, 2.0);
            let (ks, vs) = Stored::kv(2, nkv * len * hd);
            let (k, v) = (&ks.f32, &vs.f32);
            let shape = (nh, nkv, hd, len);
            for level in SimdLevel::available() {
                let got = attend(level, &q, shape, k, v);
                let got16 = attend(level, &q, shape, &ks.f16, &vs.f16);
                assert_same(&got, &got16, "f32 vs f16 cache");
                let gb = attend(level, &q, shape, &ks.bf16, &vs.bf16);
                let gr = attend(level, &q, shape, &ks.bf16_f32, &vs.bf16_f32);
                assert_same(&gb, &gr, "bf16 vs f32 cache");
                for qh in 0..nh {
                    let h = qh / (nh / nkv);
                    let sc: Vec<f32> = (0..len)
                        .map(|j| {
                            (0..hd)
                                .map(|d| q[qh * hd + d] * k[(h * len + j) * hd + d])
                                .sum()
                        })
                        .collect();
                    let p = softmax(&sc);
                    for d in 0..hd {
                        let want: f32 = (0..len).map(|j| p[j] * v[(h * len + j) * hd + d]).sum();
                        let g = got[qh * hd + d];
                        assert!(
                            (g - want).abs() < 1e-5,
                            "{level:?} hd {hd} head {qh} dim {d}: {g} vs {want}"
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod bench {
    use super::{KvElem, SimdLevel};

    const SHAPE: (usize, usize, usize, usize, usize) = (9, 3, 64, 1024, 30);

    /// Median ms of one decode step's attention over `k`/`v` (one per layer).
    fn median_ms<E: KvElem>(q: &[f32], k: &[Vec<E>], v: &[Vec<E>]) -> f64 {
        let (nh, nkv, hd, len, _) = SHAPE;
        let head = |h: usize| h * len * hd..(h + 1) * len * hd;
        let mut times = vec![];
        for _ in 0..21 {
            let t = std::time::Instant::now();
            for (kl, vl) in k.iter().zip(v) {
                let (k_at, v_at) = (|h| &kl[head(h)], |h| &vl[head(h)]);
                std::hint::black_box(super::decode_attention(
                    SimdLevel::best(),
                    q,
                    nh,
                    nkv,
                    hd,
                    len,
                    k_at,
                    v_at,
                ));
            }
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        times[10]
    }

    /// `cargo test --release --lib time_decode_attention -- --ignored --nocapture`:
    /// SmolLM2's shapes, 1,024 cached keys, every layer's cache distinct
    /// (47 MB in f32, as in a real decode step).
    #[test]
    #[ignore]
    fn time_decode_attention() {
        let (nh, nkv, hd, len, layers) = SHAPE;
        let k: Vec<Vec<f32>> = (0..layers)
            .map(|l| {
                (0..nkv * len * hd)
                    .map(|i| ((i * 7 + l) % 13) as f32 * 0.01)
                    .collect()
            })
            .collect();
        let k16: Vec<Vec<half::f16>> = k
            .iter()
            .map(|l| l.iter().map(|&x| half::f16::from_f32(x)).collect())
            .collect();
        let q: Vec<f32> = (0..nh * hd).map(|i| (i % 5) as f32 * 0.1).collect();
        let f32_ms = median_ms(&q, &k, &k);
        let f16_ms = median_ms(&q, &k16, &k16);
        eprintln!(
            "30 layers x 1024 keys, median: f32 cache {f32_ms:.3} ms, f16 cache {f16_ms:.3} ms"
        );
    }
}
