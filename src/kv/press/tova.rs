//! tova (kvpress `TOVAPress`): the last prefill query's attention, averaged
//! over all query heads, the same for every KV head; the last entry scores
//! `max + 1`.

use super::observed::{pad_max, LayerCtx};
use crate::error::Result;

pub fn score(ctx: &LayerCtx) -> Result<Vec<Vec<f32>>> {
    let att = ctx.attention()?;
    let n = ctx.len() - 1;
    let mean: Vec<f32> = (0..n)
        .map(|j| att.iter().map(|h| h[j]).sum::<f32>() / att.len() as f32)
        .collect();
    let mut s = vec![mean; ctx.kv_heads()];
    pad_max(&mut s, 1, true);
    Ok(s)
}
