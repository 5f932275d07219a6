//! Greedy answer from a fused cache: the first token from the fusion's
//! logits, then plain decoding; timed per step.

use std::time::Instant;

use candle_core::{Tensor, D};

use crate::error::Result;
use crate::kv::KvCache;
use crate::model::{ForwardOpts, Model};

#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub new_ids: Vec<u32>,
    /// Choosing the first token from the fusion's logits.
    pub first_token_ms: f64,
    /// Later steps, one forward each.
    pub step_ms: Vec<f64>,
    pub stop_reason: String,
}

impl Answer {
    pub fn tpot_ms(&self) -> f64 {
        if self.step_ms.is_empty() {
            0.0
        } else {
            self.step_ms.iter().sum::<f64>() / self.step_ms.len() as f64
        }
    }
}

fn argmax(logits: &Tensor) -> Result<u32> {
    Ok(logits
        .flatten_all()?
        .argmax(D::Minus1)?
        .to_scalar::<u32>()?)
}

pub fn greedy(
    model: &Model,
    cache: &mut KvCache,
    logits: &Tensor,
    max_new: usize,
    stop_ids: &[u32],
) -> Result<Answer> {
    let mut a = Answer::default();
    let t = Instant::now();
    let mut tok = argmax(logits)?;
    a.first_token_ms = t.elapsed().as_secs_f64() * 1e3;
    a.stop_reason = "max_tokens".into();
    loop {
        if stop_ids.contains(&tok) {
            a.stop_reason = "stop_token".into();
            break;
        }
        a.new_ids.push(tok);
        if a.new_ids.len() >= max_new {
            break;
        }
        let t = Instant::now();
        let pos = cache.next_position();
        let out = model.forward(&[tok], &[pos], cache, &ForwardOpts::default())?;
        tok = argmax(out.logits.as_ref().expect("last logits"))?;
        a.step_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(a)
}
