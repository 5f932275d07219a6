//! expected_attention (kvpress `ExpectedAttentionPress`): the attention that
//! future queries are expected to pay to each entry. Per query head, the
//! pre-RoPE queries of the prefill (sinks excluded) give a mean `mu` and a
//! covariance `S` (divided by n); RoPE averaged over the next
//! `n_future` positions, `R = mean_p(cos_p I + sin_p P)`, moves them:
//! `mu' = R mu`, `S' = R S R^T`. Then `E[exp(q·k/√d)] ∝ exp(k·mu'/√d +
//! k^T S' k / 2d)`, softmaxed over the entries, averaged over the KV group,
//! times `‖v‖`; the `n_sink` first entries score `max + 1`.

use candle_core::{DType, Device};

use super::knorm::norm;
use super::observed::{pad_max, LayerCtx};
use crate::error::{other, Result};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub n_future: usize,
    pub n_sink: usize,
    pub use_covariance: bool,
    pub use_vnorm: bool,
    pub epsilon: f32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            n_future: 512,
            n_sink: 4,
            use_covariance: true,
            use_vnorm: true,
            epsilon: 0.0,
        }
    }
}

/// The averaged rotation `R` `[d][d]` over positions `from..from + n`.
fn avg_rope(ctx: &LayerCtx, from: i64, n: usize) -> Result<Vec<Vec<f64>>> {
    let rope = ctx.cache.rope();
    let pos: Vec<i64> = (from..from + n as i64).collect();
    let (cos, sin) = rope.cos_sin(&pos, DType::F32, &Device::Cpu)?;
    let (cos, sin): (Vec<Vec<f32>>, Vec<Vec<f32>>) = (cos.to_vec2()?, sin.to_vec2()?);
    let half = cos[0].len();
    let d = 2 * half;
    let mean = |t: &Vec<Vec<f32>>, i: usize| t.iter().map(|r| r[i] as f64).sum::<f64>() / n as f64;
    let mut r = vec![vec![0f64; d]; d];
    for i in 0..half {
        let (c, s) = (mean(&cos, i), mean(&sin, i));
        r[i][i] = c;
        r[i + half][i + half] = c;
        // P[half.., ..half] = I, P[..half, half..] = -I.
        r[i][i + half] = -s;
        r[i + half][i] = s;
    }
    Ok(r)
}

fn matvec(m: &[Vec<f64>], v: &[f64]) -> Vec<f64> {
    m.iter()
        .map(|r| r.iter().zip(v).map(|(a, b)| a * b).sum())
        .collect()
}

pub fn score(ctx: &LayerCtx, p: &Params) -> Result<Vec<Vec<f32>>> {
    let len = ctx.len();
    if len <= p.n_sink {
        return Err(other(format!(
            "expected_attention: {len} entries, need more than n_sink={}",
            p.n_sink
        )));
    }
    let q = ctx
        .obs
        .queries
        .get(ctx.layer)
        .ok_or_else(|| other("expected_attention: no queries observed for this layer"))?;
    let q: Vec<Vec<Vec<f32>>> = q.to_dtype(DType::F32)?.to_vec3()?; // [nh][T][d]
    let t = q[0].len();
    if t <= p.n_sink {
        return Err(other("expected_attention: no queries after the sinks"));
    }
    let d = q[0][0].len();
    let r = avg_rope(ctx, t as i64, p.n_future)?;
    let keys = ctx.keys()?;
    let vals = ctx.values()?;
    let rep = ctx.n_rep();
    let n = len - p.n_sink;
    let mut per_q = Vec::with_capacity(q.len());
    for (h, qh) in q.iter().enumerate() {
        let qs = &qh[p.n_sink..];
        let m = qs.len() as f64;
        let mu: Vec<f64> = (0..d)
            .map(|i| qs.iter().map(|x| x[i] as f64).sum::<f64>() / m)
            .collect();
        let mu_r = matvec(&r, &mu);
        let cov_r = if p.use_covariance {
            let mut cov = vec![vec![0f64; d]; d];
            for x in qs {
                let c: Vec<f64> = (0..d).map(|i| x[i] as f64 - mu[i]).collect();
                for i in 0..d {
                    for j in 0..d {
                        cov[i][j] += c[i] * c[j];
                    }
                }
            }
            cov.iter_mut().flatten().for_each(|v| *v /= m);
            // R S R^T
            let rs: Vec<Vec<f64>> = r
                .iter()
                .map(|row| {
                    (0..d)
                        .map(|j| (0..d).map(|k| row[k] * cov[k][j]).sum())
                        .collect()
                })
                .collect();
            Some(
                rs.iter()
                    .map(|row| {
                        r.iter()
                            .map(|rr| row.iter().zip(rr).map(|(a, b)| a * b).sum())
                            .collect()
                    })
                    .collect::<Vec<Vec<f64>>>(),
            )
        } else {
            None
        };
        let logits: Vec<f64> = keys[h / rep][p.n_sink..]
            .iter()
            .map(|k| {
                let k: Vec<f64> = k.iter().map(|&v| v as f64).collect();
                let mut s =
                    k.iter().zip(&mu_r).map(|(a, b)| a * b).sum::<f64>() / (d as f64).sqrt();
                if let Some(c) = &cov_r {
                    let ck = matvec(c, &k);
                    s += k.iter().zip(&ck).map(|(a, b)| a * b).sum::<f64>() / d as f64 / 2.0;
                }
                s
            })
            .collect();
        let mx = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = logits.iter().map(|l| (l - mx).exp()).collect();
        let z: f64 = e.iter().sum();
        per_q.push(e.iter().map(|v| (v / z) as f32).collect::<Vec<f32>>());
    }
    let mut s = ctx.group_mean(&per_q);
    if p.use_vnorm {
        for (g, row) in s.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (*v + p.epsilon) * norm(&vals[g][p.n_sink + j]);
            }
        }
    }
    debug_assert!(s.iter().all(|r| r.len() == n));
    pad_max(&mut s, p.n_sink, false);
    Ok(s)
}
