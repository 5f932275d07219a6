//! Perplexity over fixed windows of a token sequence, each window scored
//! from its own prefix (no context carried between windows). For a model
//! whose tokenizer puts BOS first (Gemma), each window's first token is
//! replaced by BOS, as llama.cpp's perplexity does: the scored tokens do not
//! change, and the model sees the start it was trained on.

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
/// `bos`: the tokenizer's [`model_bos`](crate::tokenizer::Tokenizer::model_bos)
/// (see [`window_ids`]).
pub fn perplexity(
    model: &Model,
    ids: &[u32],
    window: usize,
    stride: usize,
    max_windows: usize,
    bos: Option<u32>,
) -> Result<Perplexity> {
    if window < 2 || stride == 0 || stride > window {
        return Err(other(format!(
            "perplexity: need window >= 2 and 0 < stride <= window, got {window}/{stride}"
        )));
    }
    let starts = window_starts(ids.len(), window, stride, max_windows);
    if starts.is_empty() {
        return Err(other(format!(
            "perplexity: text has {} tokens, fewer than one window of {window}",
            ids.len()
        )));
    }
    let mut nll_per_window = Vec::new();
    let mut scored_per_window = Vec::new();
    let (mut total, mut count) = (0.0f64, 0usize);
    for (w, &s) in starts.iter().enumerate() {
        let chunk = window_ids(ids, s, window, bos);
        let (sum, n) = window_nll(model, &chunk, first_scored(w, window, stride))?;
        nll_per_window.push(sum / n as f64);
        scored_per_window.push(n);
        total += sum;
        count += n;
    }
    Ok(Perplexity {
        nll_per_window,
        scored_per_window,
        ppl: (total / count as f64).exp(),
        tokens: count,
    })
}

/// Start offsets of the windows over `n` tokens (a partial last window is dropped).
pub fn window_starts(n: usize, window: usize, stride: usize, max_windows: usize) -> Vec<usize> {
    let mut starts: Vec<usize> = (0..)
        .map(|i| i * stride)
        .take_while(|s| s + window <= n)
        .collect();
    if max_windows > 0 {
        starts.truncate(max_windows);
    }
    starts
}

/// The ids window `start..start + window` is run on: those of `ids`, the
/// first replaced by `bos` if given (a model that expects BOS first; the
/// first token is never scored, so the scored tokens are the same).
pub fn window_ids(ids: &[u32], start: usize, window: usize, bos: Option<u32>) -> Vec<u32> {
    let mut chunk = ids[start..start + window].to_vec();
    if let Some(b) = bos {
        chunk[0] = b;
    }
    chunk
}

/// The first position window `w` scores: 1 for the first window, else the
/// start of its last `stride` tokens.
pub fn first_scored(w: usize, window: usize, stride: usize) -> usize {
    if w == 0 {
        1
    } else {
        (window - stride).max(1)
    }
}

/// Summed NLL of `chunk[first..]`, each token predicted from the tokens
/// before it in `chunk`, and how many tokens that is.
pub fn window_nll(model: &Model, chunk: &[u32], first: usize) -> Result<(f64, usize)> {
    let window = chunk.len();
    let opts = ForwardOpts {
        logits: Logits::All,
        ..Default::default()
    };
    let pos: Vec<i64> = (0..window as i64).collect();
    let mut cache = model.new_cache();
    let logits = model
        .forward(chunk, &pos, &mut cache, &opts)?
        .logits
        .expect("all logits");
    // Logits at position i predict token i + 1.
    let pred = logits
        .narrow(0, first - 1, window - first)?
        .to_dtype(DType::F32)?;
    let logp = candle_nn::ops::log_softmax(&pred, D::Minus1)?;
    let targets = Tensor::new(&chunk[first..], logp.device())?.unsqueeze(1)?;
    let picked: Vec<f32> = logp.gather(&targets, 1)?.squeeze(1)?.to_vec1()?;
    let sum: f64 = picked.iter().map(|&x| -(x as f64)).sum();
    Ok((sum, picked.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_ids_put_bos_first_only_when_asked() {
        let ids: Vec<u32> = (10..20).collect();
        assert_eq!(window_ids(&ids, 4, 3, None), vec![14, 15, 16]);
        assert_eq!(window_ids(&ids, 4, 3, Some(2)), vec![2, 15, 16]);
        // The scored tokens (1..) are the text's either way.
        assert_eq!(window_ids(&ids, 0, 4, Some(2))[1..], ids[1..4]);
    }
}
