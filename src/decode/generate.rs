//! Autoregressive generation with the KV cache, timed per step.

use super::sampling::next_token;
use super::spec::{NoPress, PressHook};
use crate::error::Result;
use crate::model::{ForwardOpts, Model};
use rand::SeedableRng;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct GenerateOpts {
    pub max_new_tokens: usize,
    /// 0 = greedy.
    pub temperature: f64,
    pub seed: u64,
    /// Generation stops after emitting one of these (it is kept in the output).
    pub stop_ids: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct Generation {
    pub new_ids: Vec<u32>,
    /// Prefill plus choosing the first token.
    pub ttft_ms: f64,
    /// Mean time per token after the first.
    pub tpot_ms: f64,
    /// Wall time of every step (step 0 is the prefill).
    pub step_ms: Vec<f64>,
    /// "stop_token" or "max_tokens".
    pub stop_reason: String,
    /// Bytes of KV cache held at the end.
    pub kv_bytes: usize,
}

pub fn generate(model: &Model, prompt: &[u32], opts: &GenerateOpts) -> Result<Generation> {
    generate_with(model, prompt, opts, &mut NoPress)
}

/// `generate` with a hook (a KV press) called after every forward, before
/// the next one; its `draft` cache is always None.
pub fn generate_with(
    model: &Model,
    prompt: &[u32],
    opts: &GenerateOpts,
    hook: &mut dyn PressHook,
) -> Result<Generation> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
    let mut cache = model.new_cache();
    let mut new_ids = Vec::new();
    let mut step_ms = Vec::new();
    let mut stop_reason = "max_tokens".to_string();
    let mut ids: Vec<u32> = prompt.to_vec();
    let mut pos: Vec<i64> = (0..prompt.len() as i64).collect();
    let fwd = ForwardOpts::default();
    while new_ids.len() < opts.max_new_tokens {
        let t = Instant::now();
        let out = model.forward(&ids, &pos, &mut cache, &fwd)?;
        let logits = out.logits.expect("Logits::Last requested");
        let tok = next_token(&logits, opts.temperature, &mut rng)?;
        let next_pos = pos[pos.len() - 1] + 1;
        new_ids.push(tok);
        let last = opts.stop_ids.contains(&tok) || new_ids.len() == opts.max_new_tokens;
        if !last {
            hook.between_rounds(step_ms.len(), &mut cache, None)?;
        }
        step_ms.push(t.elapsed().as_secs_f64() * 1e3);
        if opts.stop_ids.contains(&tok) {
            stop_reason = "stop_token".into();
            break;
        }
        ids = vec![tok];
        pos = vec![next_pos];
    }
    let ttft_ms = step_ms.first().copied().unwrap_or(0.0);
    let rest = &step_ms[1.min(step_ms.len())..];
    let tpot_ms = if rest.is_empty() {
        0.0
    } else {
        rest.iter().sum::<f64>() / rest.len() as f64
    };
    Ok(Generation {
        new_ids,
        ttft_ms,
        tpot_ms,
        step_ms,
        stop_reason,
        kv_bytes: cache.nbytes(),
    })
}
