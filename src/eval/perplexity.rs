//! Perplexity over fixed windows of a token sequence, each window scored
//! from its own prefix (no context carried between windows).

use crate::error::{other, Result};
use crate::model::{ForwardOpts, Logits, Model};
use candle_core::{DType, Tensor, D};

#[derive(Debug, Clone)]
pub struct Perplexity {
    /// Mean negative log-likelihood of each window's scored tokens.
    pub nll_per_window: Vec<f64>,
    pub scored_per_window: Vec<usize>,
    pub ppl: f64,
    /// Tokens scored in all.
    pub tokens: usize,
}

/// Windows of `window` tokens start every `stride` tokens (a partial last
/// window is dropped). The first window scores tokens 1..window; later ones
/// score only their last `stride` tokens, which no earlier window scored.
pub fn perplexity(
    model: &Model,
    ids: &[u32],
    window: usize,
    stride: usize,
    max_windows: usize,
) -> Result<Perplexity> {
    if window < 2 || stride == 0 || stride > window {
        return Err(other(format!(
            "perplexity: need window >= 2 and 0 < stride <= window, got {window}/{stride}"
        )));
    }
    let mut starts: Vec<usize> = (0..)
        .map(|i| i * stride)
        .take_while(|s| s + window <= ids.len())
        .collect();
    if max_windows > 0 {
        starts.truncate(max_windows);
    }
    if starts.is_empty() {
        return Err(other(format!(
            "perplexity: text has {} tokens, fewer than one window of {window}",
            ids.len()
        )));
    }
    let opts = ForwardOpts {
        logits: Logits::All,
        ..Default::default()
    };
    let mut nll_per_window = Vec::new();
    let mut scored_per_window = Vec::new();
    let (mut total, mut count) = (0.0f64, 0usize);
    for (w, &s) in starts.iter().enumerate() {
        let chunk = &ids[s..s + window];
        let pos: Vec<i64> = (0..window as i64).collect();
        let mut cache = model.new_cache();
        let logits = model
            .forward(chunk, &pos, &mut cache, &opts)?
            .logits
            .expect("all logits");
        let first = if w == 0 { 1 } else { window - stride };
        let first = first.max(1);
        // Logits at position i predict token i + 1.
        let pred = logits
            .narrow(0, first - 1, window - first)?
            .to_dtype(DType::F32)?;
        let logp = candle_nn::ops::log_softmax(&pred, D::Minus1)?;
        let targets = Tensor::new(&chunk[first..], logp.device())?.unsqueeze(1)?;
        let picked: Vec<f32> = logp.gather(&targets, 1)?.squeeze(1)?.to_vec1()?;
        let sum: f64 = picked.iter().map(|&x| -(x as f64)).sum();
        nll_per_window.push(sum / picked.len() as f64);
        scored_per_window.push(picked.len());
        total += sum;
        count += picked.len();
    }
    Ok(Perplexity {
        nll_per_window,
        scored_per_window,
        ppl: (total / count as f64).exp(),
        tokens: count,
    })
}
