//! `blend` (CacheBlend): recompute the document tokens whose cached K (and
//! optionally V) deviate most from fresh ones at the check layer.

use candle_core::{DType, Tensor};

use super::budget::top_k;
use super::layout::FusionInput;
use crate::error::Result;
use crate::kv::KvCache;
use crate::model::{ForwardOpts, Logits, Model};

/// Fresh K/V come from a prefill of the document through layers
/// `0..=check` only (a small fraction of a full prefill); the deviation of
/// token t is `sum over heads and dims of (fresh - cached)^2`.
pub fn select(
    model: &Model,
    input: &FusionInput,
    fused: &KvCache,
    k: usize,
    check: usize,
    use_v: bool,
) -> Result<Vec<usize>> {
    let n = input.doc_len();
    if n == 0 || k == 0 {
        return Ok(vec![]);
    }
    let mut fresh = input.prefix_kv.clone().unwrap_or_else(|| model.new_cache());
    let pos: Vec<i64> = (0..n).map(|i| input.doc_pos(i)).collect();
    let opts = ForwardOpts {
        logits: Logits::None,
        n_layers: Some(check + 1),
        ..Default::default()
    };
    model.forward(&input.doc_ids(), &pos, &mut fresh, &opts)?;
    let p = input.prefix_len();
    let dev = |a: Tensor, b: Tensor| -> Result<Tensor> {
        let a = a.narrow(1, p, n)?.to_dtype(DType::F32)?;
        let b = b.narrow(1, p, n)?.to_dtype(DType::F32)?;
        Ok((a - b)?.sqr()?.sum(2)?.sum(0)?)
    };
    let mut score = dev(fresh.k_view(check)?, fused.k_view(check)?)?;
    if use_v {
        score = (score + dev(fresh.v_view(check)?, fused.v_view(check)?)?)?;
    }
    Ok(top_k(&score.to_vec1::<f32>()?, k))
}
