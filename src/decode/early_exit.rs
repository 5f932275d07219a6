//! Greedy generation with true token-level early exit: every new token runs
//! the first `exit_layer` blocks; if the shallow head (final norm + LM head
//! on the shallow hidden state) is confident (max prob >= threshold) the
//! token is emitted from there and the deep blocks are skipped. The deep
//! layers' KV for an exited position is then missing; two fills:
//!
//! - `Lazy` (CALM): keep the exited tokens' shallow hidden states and run the
//!   deep blocks on them batched with the next token that goes deep. The
//!   deep KV is then exactly what running every token deep would give.
//! - `Propagate`: copy the exited hidden state upward: deep layer l's K/V
//!   for that position come from the shallow hidden state (block l is run
//!   on it and its output dropped).
//!
//! Threshold 1 never exits (even on a saturated softmax), so it reproduces
//! plain greedy exactly. The prompt always runs every layer.

use std::time::Instant;

use candle_core::{Tensor, D};

use super::sampling::next_token;
use crate::error::{input_err, Result};
use crate::model::{ForwardOpts, Model};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeepKv {
    Lazy,
    Propagate,
}

#[derive(Debug, Clone)]
pub struct EarlyExitOpts {
    pub exit_layer: usize,
    pub threshold: f64,
    pub max_new_tokens: usize,
    pub deep_kv: DeepKv,
    pub stop_ids: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct EarlyExitGen {
    pub new_ids: Vec<u32>,
    /// Per new token after the first (which comes from the prompt's
    /// full forward): did it exit at the shallow head?
    pub exited: Vec<bool>,
    pub wall_s: f64,
}

impl EarlyExitGen {
    pub fn shallow_ratio(&self) -> f64 {
        self.exited.iter().filter(|&&e| e).count() as f64 / self.exited.len().max(1) as f64
    }
}

fn max_prob(logits: &Tensor) -> Result<f64> {
    let p = candle_nn::ops::softmax_last_dim(logits)?;
    Ok(p.max(D::Minus1)?.flatten_all()?.to_vec1::<f32>()?[0] as f64)
}

pub fn generate_early_exit(
    model: &Model,
    prompt: &[u32],
    o: &EarlyExitOpts,
) -> Result<EarlyExitGen> {
    let n = model.config().n_layers;
    if o.exit_layer == 0 || o.exit_layer >= n {
        return Err(input_err(
            "early exit",
            "exit_layer",
            format!("{} outside 1..{n}", o.exit_layer),
        ));
    }
    crate::train::config::check_threshold("threshold", o.threshold)?;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
    let start = Instant::now();
    let mut cache = model.new_cache();
    let pos: Vec<i64> = (0..prompt.len() as i64).collect();
    let out = model.forward(prompt, &pos, &mut cache, &ForwardOpts::default())?;
    let mut tok = next_token(&out.logits.expect("last logits"), 0.0, &mut rng)?;
    let mut new_ids = vec![tok];
    let mut exited = Vec::new();
    let mut p = prompt.len() as i64;
    // Lazy: exited tokens' shallow hidden states and positions, not yet deep.
    let (mut pend_h, mut pend_p): (Vec<Tensor>, Vec<i64>) = (Vec::new(), Vec::new());
    while new_ids.len() < o.max_new_tokens && !o.stop_ids.contains(&tok) {
        let h = model.run_layers(&model.embed_ids(&[tok])?, &[p], &mut cache, 0..o.exit_layer)?;
        let shallow = model.logits_of(&h)?;
        let exit = o.threshold < 1.0 && max_prob(&shallow)? >= o.threshold;
        let logits = if exit {
            match o.deep_kv {
                DeepKv::Lazy => {
                    pend_h.push(h);
                    pend_p.push(p);
                }
                DeepKv::Propagate => {
                    for l in o.exit_layer..n {
                        model.run_layers(&h, &[p], &mut cache, l..l + 1)?;
                    }
                }
            }
            shallow
        } else {
            pend_h.push(h);
            pend_p.push(p);
            let x = Tensor::cat(&pend_h, 0)?;
            let y = model.run_layers(&x, &pend_p, &mut cache, o.exit_layer..n)?;
            pend_h.clear();
            pend_p.clear();
            model.logits_of(&y.narrow(0, y.dim(0)? - 1, 1)?)?
        };
        tok = next_token(&logits, 0.0, &mut rng)?;
        new_ids.push(tok);
        exited.push(exit);
        p += 1;
    }
    Ok(EarlyExitGen {
        new_ids,
        exited,
        wall_s: start.elapsed().as_secs_f64(),
    })
}

/// Mean NLL per token of `new_ids` after `prompt` under the full model
/// (teacher-forced), for the quality of a generation.
pub fn full_model_nll(model: &Model, prompt: &[u32], new_ids: &[u32]) -> Result<f64> {
    let ids: Vec<u32> = prompt.iter().chain(new_ids).copied().collect();
    let pos: Vec<i64> = (0..ids.len() as i64).collect();
    let opts = ForwardOpts {
        logits: crate::model::Logits::All,
        ..Default::default()
    };
    let out = model.forward(&ids, &pos, &mut model.new_cache(), &opts)?;
    let logp = candle_nn::ops::log_softmax(&out.logits.expect("all logits"), D::Minus1)?;
    let mut sum = 0.0;
    for (i, &t) in new_ids.iter().enumerate() {
        let row = prompt.len() + i - 1;
        sum -= logp.get(row)?.get(t as usize)?.to_scalar::<f32>()? as f64;
    }
    Ok(sum / new_ids.len().max(1) as f64)
}
