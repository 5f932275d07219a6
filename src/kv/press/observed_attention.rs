//! observed_attention (kvpress `ObservedAttentionPress`, H2O-like): the
//! attention every prefill query paid to an entry, divided by how many
//! queries could see it (`len - j` under the causal mask), averaged over
//! the query heads of each KV group.

use super::observed::LayerCtx;
use crate::error::Result;

pub fn score(ctx: &LayerCtx) -> Result<Vec<Vec<f32>>> {
    let len = ctx.len();
    let per_q: Vec<Vec<f32>> = ctx
        .attention()?
        .iter()
        .map(|h| {
            h.iter()
                .enumerate()
                .map(|(j, &a)| a / (len - j) as f32)
                .collect()
        })
        .collect();
    Ok(ctx.group_mean(&per_q))
}
