//! snapkv (kvpress `SnapKVPress`): the attention of the last `window`
//! prefill queries, averaged over the window, smoothed by an average pool of
//! `kernel` (zero padding counted, as torch's `avg_pool1d`), averaged over
//! the query heads of each KV group (kvpress's GQA rule, SnapKV issue #22);
//! the window itself scores `max + 1` and is always kept.

use super::observed::{pad_max, LayerCtx};
use crate::error::{other, Result};

/// torch `avg_pool1d(x, k, stride=1, padding=k/2)` with `count_include_pad`.
pub fn avg_pool(x: &[f32], kernel: usize) -> Vec<f32> {
    let pad = kernel / 2;
    let n = x.len();
    let out = n + 2 * pad + 1 - kernel;
    (0..out)
        .map(|o| {
            let sum: f32 = (o..o + kernel)
                .filter(|&i| i >= pad && i - pad < n)
                .map(|i| x[i - pad])
                .sum();
            sum / kernel as f32
        })
        .collect()
}

pub fn score(ctx: &LayerCtx, window: usize, kernel: usize) -> Result<Vec<Vec<f32>>> {
    let len = ctx.len();
    if len <= window {
        return Err(other(format!(
            "snapkv: {len} entries, need more than window={window}"
        )));
    }
    let n = len - window;
    let per_q: Vec<Vec<f32>> = ctx
        .attention()?
        .iter()
        .map(|h| avg_pool(&h[..n], kernel))
        .collect();
    let mut s = ctx.group_mean(&per_q);
    pad_max(&mut s, window, true);
    Ok(s)
}

#[cfg(test)]
mod tests {
    #[test]
    fn avg_pool_counts_padding() {
        let p = super::avg_pool(&[5.0, 0.0, 0.0, 0.0, 5.0], 5);
        assert_eq!(p, vec![1.0, 1.0, 2.0, 1.0, 1.0]);
    }
}
