//! streaming_llm (kvpress `StreamingLLMPress`): keep `n_sink` first entries
//! and the most recent ones; the evicted block starts right after the sinks.

use super::observed::LayerCtx;
use crate::error::{other, Result};

pub fn score(ctx: &LayerCtx, n_sink: usize) -> Result<Vec<Vec<f32>>> {
    let len = ctx.len();
    if len <= n_sink {
        return Err(other(format!(
            "streaming_llm: {len} entries, need more than n_sink={n_sink}"
        )));
    }
    let n_pruned = len - ctx.keep.min(len);
    let mut s = vec![1.0f32; len];
    for v in s.iter_mut().skip(n_sink).take(n_pruned) {
        *v = 0.0;
    }
    Ok(vec![s; ctx.kv_heads()])
}
