//! `apply`: score each layer, keep its budget, evict with `gather_heads`.

use super::observed::{LayerCtx, Observed};
use super::select::{adakv, top_k, top_up};
use super::{Budget, Press};
use crate::error::Result;
use crate::kv::KvCache;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressStats {
    pub bytes_before: usize,
    /// Bytes the cache holds afterwards (what is allocated for its entries).
    pub bytes_after: usize,
    /// Entries kept per layer (per KV head; the longest head with AdaKV).
    pub kept: Vec<usize>,
    /// Entries each KV head was allotted (AdaKV; else all equal `kept`).
    pub kept_per_head: Vec<Vec<usize>>,
}

/// True when `budget` (with `press`'s own schedule) evicts something from
/// layers of `len` entries; when it does not, a press needs no observation.
pub fn evicts(press: &Press, budget: &Budget, len: usize, n_layers: usize) -> bool {
    let mut b = budget.clone();
    if let Some(s) = press.schedule() {
        b.schedule = s;
    }
    (0..n_layers).any(|l| b.keep(l, n_layers, len) < len)
}

/// Compresses every layer of `cache` in place. With `budget.per_head`
/// (AdaKV), heads of a layer share `keep * kv_heads` entries; since the cache
/// keeps heads equally long, shorter heads are topped up with their next
/// best entries, and `bytes_after` counts what is actually held.
pub fn apply(
    cache: &mut KvCache,
    press: &Press,
    budget: &Budget,
    obs: &Observed,
) -> Result<CompressStats> {
    let bytes_before = cache.nbytes();
    let n_layers = cache.n_layers();
    let mut budget = budget.clone();
    if let Some(s) = press.schedule() {
        budget.schedule = s;
    }
    let (mut kept, mut kept_per_head) = (Vec::new(), Vec::new());
    for layer in 0..n_layers {
        let len = cache.len(layer);
        if len == 0 {
            kept.push(0);
            kept_per_head.push(vec![0; cache.kv_heads()]);
            continue;
        }
        let keep = budget.keep(layer, n_layers, len);
        if keep >= len && budget.per_head.is_none() {
            // Nothing to evict: no scores (kvpress skips them at ratio 0 too).
            kept.push(len);
            kept_per_head.push(vec![len; cache.kv_heads()]);
            continue;
        }
        let ctx = LayerCtx {
            cache,
            obs,
            layer,
            keep,
            ratio: budget.ratio_of(len),
        };
        let scores = press.score(&ctx)?;
        let mut heads = match budget.per_head {
            Some(alpha) => adakv(&scores, keep, alpha),
            None => scores.iter().map(|s| top_k(s, keep)).collect(),
        };
        kept_per_head.push(heads.iter().map(Vec::len).collect());
        top_up(&mut heads, &scores);
        kept.push(heads[0].len());
        cache.gather_heads(layer, &heads)?;
    }
    Ok(CompressStats {
        bytes_before,
        bytes_after: cache.nbytes(),
        kept,
        kept_per_head,
    })
}
