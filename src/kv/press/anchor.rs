//! Anchor rules of seed 002 (SparseKV):
//! - A: token type + position. Special and punctuation tokens, the `n_sink`
//!   first and `recent` last entries are anchors. Under a budget, anchors
//!   go first, then the other entries by recency.
//! - B: attention top-k: attention summed over every prefill query
//!   (`attention_weights.sum(dim=query_dim)`), averaged over the KV group.
//! - C: the fixed anchors of A always, the rest of the budget by B's score.

use super::observed::LayerCtx;
use crate::error::{other, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    A,
    B,
    C,
}

/// Rule A's anchor flags per entry.
fn fixed(ctx: &LayerCtx, n_sink: usize, recent: usize) -> Result<Vec<bool>> {
    let len = ctx.len();
    let types = ctx
        .obs
        .anchors
        .as_ref()
        .ok_or_else(|| other("anchor rules A/C: no token-type anchors given"))?;
    if types.len() != len {
        return Err(other(format!(
            "anchor rules A/C: {} token types for {len} entries",
            types.len()
        )));
    }
    Ok((0..len)
        .map(|j| types[j] || j < n_sink || j + recent >= len)
        .collect())
}

pub fn score(ctx: &LayerCtx, rule: Rule, n_sink: usize, recent: usize) -> Result<Vec<Vec<f32>>> {
    let len = ctx.len();
    let attn = || -> Result<Vec<Vec<f32>>> { Ok(ctx.group_mean(ctx.attention()?)) };
    Ok(match rule {
        Rule::A => {
            let f = fixed(ctx, n_sink, recent)?;
            let s: Vec<f32> = (0..len)
                .map(|j| f32::from(u8::from(f[j])) + j as f32 / len as f32 / 2.0)
                .collect();
            vec![s; ctx.kv_heads()]
        }
        Rule::B => attn()?,
        Rule::C => {
            let f = fixed(ctx, n_sink, recent)?;
            let mut s = attn()?;
            // Attention rows sum to at most the number of queries; 2 + that is above any.
            let top = s.iter().flatten().copied().fold(0f32, f32::max) + 2.0;
            for row in s.iter_mut() {
                for (v, &a) in row.iter_mut().zip(&f) {
                    if a {
                        *v = top;
                    }
                }
            }
            s
        }
    })
}
