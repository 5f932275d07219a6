//! Grouped-query self-attention over the owned KV cache.
//!
//! The new tokens' K/V are appended to the cache first; then every query
//! attends to the layer's cache entries, masked by absolute positions: key j
//! is visible to query i iff `k_pos[j] <= q_pos[i]` (and, with a sliding
//! window W, `q_pos[i] - k_pos[j] < W`). One path serves prefill, decode,
//! multi-token verification, evicted caches and partial recomputation.
//!
//! GQA without copying the cache: the n_rep query heads that share a KV head
//! are stacked as rows, so Q is `[kv, n_rep*T, d]` against K `[kv, L, d]`.

use std::ops::Range;

use candle_core::{DType, Tensor};

use super::linear::{FusedLinear, Linear};
use super::weights::{Role, Weights};
use crate::error::Result;
use crate::kv::{KvCache, Rope};

/// How observed attention probabilities are pooled over the queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    Sum,
    Mean,
    Max,
    /// No pooling: `[n_heads, n_queries, n_keys]`.
    Full,
}

/// Which queries' attention probabilities to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observe {
    /// Indices into this call's tokens.
    pub queries: Range<usize>,
    pub pool: Pool,
}

#[derive(Debug, Clone)]
pub struct Attention {
    qkv: FusedLinear,
    o: Linear,
    n_heads: usize,
    n_kv: usize,
    head_dim: usize,
    window: Option<usize>,
}

/// Additive mask `[heads_or_1, 1, T, L]` (0 or -inf), or None when every key
/// is visible to every query (plain decode).
fn build_mask(
    q_pos: &[i64],
    cache: &KvCache,
    layer: usize,
    window: Option<usize>,
    dev: &candle_core::Device,
) -> Result<Option<Tensor>> {
    let visible = |q: i64, k: i64| k <= q && window.is_none_or(|w| ((q - k) as u64) < w as u64);
    let heads: Vec<&[i64]> = if cache.is_per_head(layer) {
        (0..cache.kv_heads())
            .map(|h| cache.head_positions(layer, h))
            .collect()
    } else {
        vec![cache.positions(layer)]
    };
    let all_visible = heads
        .iter()
        .all(|ks| q_pos.iter().all(|&q| ks.iter().all(|&k| visible(q, k))));
    if all_visible {
        return Ok(None);
    }
    let (t, l) = (q_pos.len(), heads[0].len());
    let mut m = Vec::with_capacity(heads.len() * t * l);
    for ks in &heads {
        for &q in q_pos {
            m.extend(ks.iter().map(|&k| {
                if visible(q, k) {
                    0f32
                } else {
                    f32::NEG_INFINITY
                }
            }));
        }
    }
    Ok(Some(Tensor::from_vec(m, (heads.len(), 1, t, l), dev)?))
}

fn pool(p: &Tensor, how: Pool) -> Result<Tensor> {
    Ok(match how {
        Pool::Sum => p.sum(1)?,
        Pool::Mean => p.mean(1)?,
        Pool::Max => p.max(1)?,
        Pool::Full => p.clone(),
    })
}

impl Attention {
    pub(crate) fn load(w: &Weights, layer: usize) -> Result<Self> {
        let cfg = w.cfg;
        let b = cfg.attn_bias;
        let qkv = FusedLinear::new(vec![
            w.linear(Role::Q, layer, b)?,
            w.linear(Role::K, layer, b)?,
            w.linear(Role::V, layer, b)?,
        ])?;
        Ok(Attention {
            qkv,
            o: w.linear(Role::O, layer, cfg.attn_out_bias)?,
            n_heads: cfg.n_heads,
            n_kv: cfg.n_kv_heads,
            head_dim: cfg.head_dim,
            window: cfg.sliding_window,
        })
    }

    /// `x` `[T, hidden]` -> `([T, hidden], observed probabilities)`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        x: &Tensor,
        positions: &[i64],
        rope: &Rope,
        cos_sin: &(Tensor, Tensor),
        cache: &mut KvCache,
        layer: usize,
        observe: Option<&Observe>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let t = positions.len();
        let (nh, nkv, hd) = (self.n_heads, self.n_kv, self.head_dim);
        let n_rep = nh / nkv;
        let qkv = self.qkv.forward(x)?;
        let heads = |y: &Tensor, n: usize| -> Result<Tensor> {
            Ok(y.reshape((t, n, hd))?.transpose(0, 1)?.contiguous()?)
        };
        let q = rope.apply_tables(&heads(&qkv[0], nh)?, &cos_sin.0, &cos_sin.1)?;
        let k = rope.apply_tables(&heads(&qkv[1], nkv)?, &cos_sin.0, &cos_sin.1)?;
        let v = heads(&qkv[2], nkv)?;
        cache.append(layer, &k, &v, positions)?;

        let keys = cache.k_view(layer)?;
        let vals = cache.v_view(layer)?;
        let l = keys.dim(1)?;
        let scale = 1.0 / (hd as f64).sqrt();
        // Scaling Q (T rows) is cheaper than scaling the scores (T x L).
        let qg = (q.reshape((nkv, n_rep * t, hd))? * scale)?;
        let mut scores = qg.matmul(&keys.t()?)?.to_dtype(DType::F32)?;
        if let Some(mask) = build_mask(positions, cache, layer, self.window, x.device())? {
            scores = scores
                .reshape((nkv, n_rep, t, l))?
                .broadcast_add(&mask)?
                .reshape((nkv, n_rep * t, l))?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let observed = match observe {
            Some(o) => {
                let p = probs.reshape((nh, t, l))?;
                let qs = o.queries.start.min(t)..o.queries.end.min(t);
                Some(pool(&p.narrow(1, qs.start, qs.len())?, o.pool)?)
            }
            None => None,
        };
        let out = probs.to_dtype(vals.dtype())?.matmul(&vals)?; // [kv, n_rep*t, hd]
        let out = out
            .reshape((nh, t, hd))?
            .transpose(0, 1)?
            .reshape((t, nh * hd))?;
        Ok((self.o.forward(&out)?, observed))
    }
}
