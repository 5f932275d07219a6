//! What a press may read besides the cache: attention probabilities of a
//! window of prefill queries, pre-RoPE queries, the output projection and
//! token-type anchors. The engine side (`eval::press_run`) fills only what
//! `Press::needs` asks for; the presses themselves stay plain functions of
//! these values.

use candle_core::{DType, Tensor};

use crate::error::{other, Result};
use crate::kv::KvCache;

/// Which prefill queries' attention a press reads, and how it is pooled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The last n queries, averaged (SnapKV, PyramidKV).
    LastMean(usize),
    /// The last n queries, summed (TOVA: n = 1).
    LastSum(usize),
    /// Every query, summed (observed attention, anchor rules B and C).
    AllSum,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub attention: Option<Window>,
    /// Pre-RoPE queries of every prefill token (expected attention).
    pub queries: bool,
    /// `W_o` per layer (CriticalKV).
    pub out_proj: bool,
    /// Token-type anchors (anchor rules A and C).
    pub anchors: bool,
    /// Attention of a context-reconstruction pass (kvzip).
    pub reconstruction: bool,
}

/// Observations of one prefill, per layer.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Query heads of the model.
    pub n_heads: usize,
    /// `[n_heads][n_keys]` pooled per `Needs::attention`.
    pub attention: Vec<Vec<Vec<f32>>>,
    /// Pre-RoPE queries `[n_heads, T, head_dim]` of the prefill tokens.
    pub queries: Vec<Tensor>,
    /// `W_o^T` `[n_heads * head_dim, hidden]` (f32).
    pub out_proj: Vec<Tensor>,
    /// Per cache entry of the prefill: a special or punctuation token.
    pub anchors: Option<Vec<bool>>,
    /// `[kv_heads][n_keys]`: the largest attention any reconstruction query
    /// of the KV group paid to each prefill entry (kvzip).
    pub reconstruction: Vec<Vec<Vec<f32>>>,
}

/// Everything one layer's scoring sees.
pub struct LayerCtx<'a> {
    pub cache: &'a KvCache,
    pub obs: &'a Observed,
    pub layer: usize,
    /// Entries this layer keeps (per KV head), and the ratio it evicts.
    pub keep: usize,
    pub ratio: f64,
}

impl LayerCtx<'_> {
    pub fn len(&self) -> usize {
        self.cache.len(self.layer)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn kv_heads(&self) -> usize {
        self.cache.kv_heads()
    }

    /// Query heads per KV head.
    pub fn n_rep(&self) -> usize {
        (self.obs.n_heads / self.kv_heads()).max(1)
    }

    /// `[kv_heads][len][head_dim]` in f32.
    pub fn keys(&self) -> Result<Vec<Vec<Vec<f32>>>> {
        Ok(self.cache.k(self.layer)?.to_dtype(DType::F32)?.to_vec3()?)
    }

    pub fn values(&self) -> Result<Vec<Vec<Vec<f32>>>> {
        Ok(self.cache.v(self.layer)?.to_dtype(DType::F32)?.to_vec3()?)
    }

    /// This layer's pooled attention `[n_heads][len]`.
    pub fn attention(&self) -> Result<&[Vec<f32>]> {
        let a = self
            .obs
            .attention
            .get(self.layer)
            .ok_or_else(|| other("press: no attention observed for this layer"))?;
        if a.first().map(Vec::len) != Some(self.len()) {
            return Err(other(format!(
                "press: observed attention over {} keys, cache holds {}",
                a.first().map_or(0, Vec::len),
                self.len()
            )));
        }
        Ok(a)
    }

    /// Averages per-query-head rows `[n_heads][n]` into KV groups `[kv][n]`.
    pub fn group_mean(&self, per_q: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let rep = self.n_rep();
        (0..self.kv_heads())
            .map(|g| {
                let rows = &per_q[g * rep..(g + 1) * rep];
                (0..rows[0].len())
                    .map(|j| rows.iter().map(|r| r[j]).sum::<f32>() / rep as f32)
                    .collect()
            })
            .collect()
    }
}

/// `x` padded with `n` copies of `max(all of x) + 1` at the end (or the
/// start): kvpress's way of making sure a window or sinks are never evicted.
pub fn pad_max(rows: &mut [Vec<f32>], n: usize, at_end: bool) {
    let m = rows
        .iter()
        .flatten()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    let v = if m.is_finite() { m + 1.0 } else { 1.0 };
    for r in rows.iter_mut() {
        if at_end {
            r.extend(std::iter::repeat_n(v, n));
        } else {
            r.splice(0..0, std::iter::repeat_n(v, n));
        }
    }
}
