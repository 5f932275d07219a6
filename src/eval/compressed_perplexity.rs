//! Perplexity with a compressed cache. Each window's first half is
//! prefilled and compressed with the press; the second half is scored
//! against the compressed cache (its first token from the prefill's last
//! logits, the rest in one forward, or in chunks of `press_every` tokens with
//! the cache re-compressed to its post-prefill size after each chunk: a
//! decoding-time press). Without a press the same protocol runs uncompressed,
//! and a press at ratio 0 gives exactly that result.

use candle_core::{DType, Tensor, D};

use super::perplexity::window_starts;
use super::press_run::{check, prefill, PressInputs};
use crate::error::{input_err, Result};
use crate::kv::press::{apply, evicts, Budget, Needs, Press, Schedule};
use crate::model::{ForwardOpts, Logits, Model};

#[derive(Debug, Clone)]
pub struct CompressedPerplexity {
    pub ppl: f64,
    pub nll_per_window: Vec<f64>,
    pub tokens: usize,
    /// Per window: cache bytes before and after the prefill compression.
    pub bytes_before: Vec<usize>,
    pub bytes_after: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct PressSpec<'a> {
    pub press: &'a Press,
    pub budget: &'a Budget,
    /// Re-compress every N scored tokens (cache-only presses).
    pub press_every: Option<usize>,
    /// Token-type anchors are per window, so only `repeat_prompt` is used.
    pub inputs: PressInputs,
}

/// Summed NLL of `targets` under `logits` `[n, vocab]`.
fn nll(logits: &Tensor, targets: &[u32]) -> Result<f64> {
    let logp = candle_nn::ops::log_softmax(&logits.to_dtype(DType::F32)?, D::Minus1)?;
    let t = Tensor::new(targets, logp.device())?.unsqueeze(1)?;
    let picked: Vec<f32> = logp.gather(&t, 1)?.squeeze(1)?.to_vec1()?;
    Ok(picked.iter().map(|&x| -(x as f64)).sum())
}

/// Non-overlapping windows of `window` tokens (at most `max_windows`, 0 = all).
pub fn compressed_perplexity(
    file: &str,
    model: &Model,
    ids: &[u32],
    window: usize,
    max_windows: usize,
    spec: Option<&PressSpec>,
) -> Result<CompressedPerplexity> {
    if window < 4 {
        return Err(input_err(file, "window", format!("{window} is below 4")));
    }
    let starts = window_starts(ids.len(), window, window, max_windows);
    if starts.is_empty() {
        return Err(input_err(
            file,
            "window",
            format!(
                "the text has {} tokens, fewer than one window of {window}",
                ids.len()
            ),
        ));
    }
    let half = window / 2;
    if let Some(s) = spec {
        check(file, s.press, s.budget, half, model.config().n_layers)?;
        if let Some(n) = s.press_every {
            let cache_only = s.press.needs() == Needs::default();
            if n == 0 || !cache_only {
                return Err(input_err(
                    file,
                    "press_every",
                    "needs N >= 1 and a press that reads only the cache",
                ));
            }
        }
    }
    let mut out = CompressedPerplexity {
        ppl: 0.0,
        nll_per_window: Vec::new(),
        tokens: 0,
        bytes_before: Vec::new(),
        bytes_after: Vec::new(),
    };
    let mut total = 0.0;
    for &s in &starts {
        let chunk = &ids[s..s + window];
        let n_layers = model.config().n_layers;
        // A budget that evicts nothing observes nothing: observation takes the
        // engine's unfused attention path, which would change the last bits.
        let needs = match spec {
            Some(p) if evicts(p.press, p.budget, half, n_layers) => p.press.needs(),
            _ => Needs::default(),
        };
        let mut p = prefill(
            model,
            &chunk[..half],
            &needs,
            &spec.map(|s| s.inputs.clone()).unwrap_or_default(),
        )?;
        out.bytes_before.push(p.cache.nbytes());
        let mut target_len = None;
        if let Some(sp) = spec {
            let st = apply(&mut p.cache, sp.press, sp.budget, &p.observed)?;
            // A budget that evicts nothing is no press: never re-compress
            // (no_press would otherwise drop the newest scored tokens).
            if evicts(sp.press, sp.budget, half, n_layers) {
                target_len = Some(st.kept.clone());
            }
        }
        out.bytes_after.push(p.cache.nbytes());
        let mut sum = nll(&p.last_logits, &chunk[half..half + 1])?;
        let step = spec.and_then(|p| p.press_every).unwrap_or(window);
        let opts = ForwardOpts {
            logits: Logits::All,
            ..Default::default()
        };
        // Feed chunk[half..window-1]; logits at i predict i + 1.
        let mut at = half;
        while at < window - 1 {
            let end = (at + step).min(window - 1);
            let pos: Vec<i64> = (at as i64..end as i64).collect();
            let o = model.forward(&chunk[at..end], &pos, &mut p.cache, &opts)?;
            sum += nll(&o.logits.expect("all logits"), &chunk[at + 1..end + 1])?;
            at = end;
            if let (Some(sp), Some(kept)) = (spec, &target_len) {
                if sp.press_every.is_some() && at < window - 1 {
                    let b = Budget {
                        schedule: Schedule::PerLayer(kept.clone()),
                        ..sp.budget.clone()
                    };
                    apply(&mut p.cache, sp.press, &b, &p.observed)?;
                }
            }
        }
        let n = window - half;
        out.nll_per_window.push(sum / n as f64);
        out.tokens += n;
        total += sum;
    }
    out.ppl = (total / out.tokens as f64).exp();
    Ok(out)
}
