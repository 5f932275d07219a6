//! lagkv (kvpress `LagKVPress`): after `n_sink`, the entries fall into
//! partitions of `lag` tokens; each partition is scored against the next one
//! (min-max normalised by it): the std over dimensions of the normalised K
//! and V, softmaxed over the partition, K and V averaged, then replaced by
//! its rank within the partition / lag. Sinks and the last (partial plus one
//! full) partition score 1 and are kept. Contexts shorter than
//! `n_sink + 2 lag` get a ramp (no compression beyond the ratio).

use super::observed::LayerCtx;
use crate::error::Result;

/// `[n_part - 1][lag]`: partition i scored against partition i + 1.
fn states_score(x: &[Vec<f32>], lag: usize) -> Vec<Vec<f32>> {
    let parts: Vec<&[Vec<f32>]> = x.chunks(lag).collect();
    let d = x[0].len();
    parts
        .windows(2)
        .map(|w| {
            let (v, r) = (w[0], w[1]);
            let lo: Vec<f32> = (0..d)
                .map(|i| r.iter().map(|t| t[i]).fold(f32::INFINITY, f32::min))
                .collect();
            let hi: Vec<f32> = (0..d)
                .map(|i| r.iter().map(|t| t[i]).fold(f32::NEG_INFINITY, f32::max))
                .collect();
            let std: Vec<f32> = v
                .iter()
                .map(|t| {
                    let z: Vec<f32> = (0..d).map(|i| (t[i] - lo[i]) / (hi[i] - lo[i])).collect();
                    let m = z.iter().sum::<f32>() / d as f32;
                    (z.iter().map(|a| (a - m) * (a - m)).sum::<f32>() / (d - 1) as f32).sqrt()
                })
                .collect();
            let mx = std.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = std.iter().map(|s| (s - mx).exp()).collect();
            let z: f32 = e.iter().sum();
            e.iter().map(|v| v / z).collect()
        })
        .collect()
}

/// `rank(x_i) / n` (argsort of argsort; ties by index).
fn ranks(x: &[f32]) -> Vec<f32> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0f32; x.len()];
    for (rank, &i) in idx.iter().enumerate() {
        r[i] = rank as f32 / x.len() as f32;
    }
    r
}

pub fn score(ctx: &LayerCtx, n_sink: usize, lag: usize) -> Result<Vec<Vec<f32>>> {
    let len = ctx.len();
    if len < n_sink + 2 * lag {
        let mut s = vec![1.0f32; len];
        if len > n_sink {
            let n = (len - n_sink) as f32;
            for (i, v) in s.iter_mut().skip(n_sink).enumerate() {
                *v = i as f32 / n;
            }
        }
        return Ok(vec![s; ctx.kv_heads()]);
    }
    let end = n_sink + ((len - n_sink) / lag) * lag;
    let (keys, vals) = (ctx.keys()?, ctx.values()?);
    Ok(keys
        .iter()
        .zip(&vals)
        .map(|(k, v)| {
            let ks = states_score(&k[n_sink..end], lag);
            let vs = states_score(&v[n_sink..end], lag);
            let mut s = vec![1.0f32; n_sink];
            for (a, b) in ks.iter().zip(&vs) {
                let mean: Vec<f32> = a.iter().zip(b).map(|(x, y)| (x + y) / 2.0).collect();
                s.extend(ranks(&mean));
            }
            s.resize(len, 1.0);
            s
        })
        .collect())
}
