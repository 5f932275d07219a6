//! Question answering over a compressed context: prefill the context,
//! compress its cache with a press, then feed the question and decode
//! greedily. The question is left out of compression (as in kvpress's
//! pipeline) unless `query_aware`, where it is prefilled with the context
//! and a press sees it (SnapKV's observation window then holds it).

use super::press_run::{prefill_compressed, PressInputs};
use crate::error::Result;
use crate::kv::press::{Budget, Press};
use crate::model::{ForwardOpts, Model};

pub struct Answer {
    pub new_ids: Vec<u32>,
    pub bytes_before: usize,
    pub bytes_after: usize,
    /// Cache entries per layer after compression (mean over layers).
    pub kept_mean: f64,
}

fn argmax(logits: &candle_core::Tensor) -> Result<u32> {
    let v: Vec<f32> = logits
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1()?;
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    Ok(best as u32)
}

#[allow(clippy::too_many_arguments)]
pub fn answer(
    file: &str,
    model: &Model,
    context: &[u32],
    question: &[u32],
    press: &Press,
    budget: &Budget,
    inputs: &PressInputs,
    query_aware: bool,
    max_new: usize,
    stop_ids: &[u32],
) -> Result<Answer> {
    let (prefix, rest): (Vec<u32>, &[u32]) = if query_aware {
        (context.iter().chain(question).copied().collect(), &[])
    } else {
        (context.to_vec(), question)
    };
    let mut inputs = inputs.clone();
    if let Some(a) = &mut inputs.anchors {
        // Question tokens (query-aware) are anchors of nothing: not flagged.
        a.resize(prefix.len(), false);
    }
    let (mut p, stats) = prefill_compressed(file, model, &prefix, press, budget, &inputs)?;
    let mut logits = p.last_logits;
    let mut next = prefix.len() as i64;
    let fwd = ForwardOpts::default();
    if !rest.is_empty() {
        let pos: Vec<i64> = (next..next + rest.len() as i64).collect();
        logits = model
            .forward(rest, &pos, &mut p.cache, &fwd)?
            .logits
            .expect("last logits");
        next += rest.len() as i64;
    }
    let mut new_ids = Vec::new();
    while new_ids.len() < max_new {
        let tok = argmax(&logits)?;
        new_ids.push(tok);
        if stop_ids.contains(&tok) || new_ids.len() == max_new {
            break;
        }
        logits = model
            .forward(&[tok], &[next], &mut p.cache, &fwd)?
            .logits
            .expect("last logits");
        next += 1;
    }
    let kept_mean = stats.kept.iter().sum::<usize>() as f64 / stats.kept.len().max(1) as f64;
    Ok(Answer {
        new_ids,
        bytes_before: stats.bytes_before,
        bytes_after: stats.bytes_after,
        kept_mean,
    })
}
