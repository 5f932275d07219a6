//! `a3` (A³): recompute the document tokens the question attends to most at
//! the check layer (summed over heads, average-pooled with kernel 5).

use super::budget::{avg_pool, top_k};
use super::layout::FusionInput;
use crate::error::{other, Result};
use crate::kv::KvCache;
use crate::model::{ForwardOpts, Logits, Model, Observe, Pool};

pub const POOL_KERNEL: usize = 5;

/// Runs the question through layers `0..=check` over the fused cache,
/// observing its attention; the cache is truncated back afterwards.
pub fn select(
    model: &Model,
    input: &FusionInput,
    fused: &mut KvCache,
    k: usize,
    check: usize,
) -> Result<Vec<usize>> {
    let n = input.doc_len();
    if n == 0 || k == 0 {
        return Ok(vec![]);
    }
    let q = input.question.len();
    if q == 0 {
        return Err(other("fusion a3: needs a question to score the document"));
    }
    let before = fused.len(0);
    let opts = ForwardOpts {
        logits: Logits::None,
        n_layers: Some(check + 1),
        observe: Some(Observe {
            queries: 0..q,
            pool: Pool::Sum,
        }),
    };
    let out = model.forward(&input.question, &input.question_pos(), fused, &opts)?;
    fused.truncate(before);
    // [n_heads, n_keys] at the check layer; keys in cache order.
    let att = out.attention[check].sum(0)?.to_vec1::<f32>()?;
    let p = input.prefix_len();
    let doc = &att[p..p + n];
    Ok(top_k(&avg_pool(doc, POOL_KERNEL), k))
}
