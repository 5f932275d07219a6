//! The optimisation loop (candle_nn::AdamW over a chosen set of variables,
//! seeded batch order) and per-token evaluation of a model's head at a depth.

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use polars::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::model::TrainModel;
use crate::error::{other, Result};

/// One point of a loss curve.
#[derive(Debug, Clone, PartialEq)]
pub struct CurvePoint {
    pub phase: u32,
    pub epoch: usize,
    pub step: usize,
    /// "train" (batch loss) or "val" (end-of-epoch validation loss).
    pub split: &'static str,
    pub loss: f64,
}

/// What one phase trains.
pub struct PhaseSpec<'a> {
    pub phase: u32,
    pub windows: &'a [Vec<u32>],
    /// Per window, per predicted position (`seq_len` of them): train on it?
    /// None = every token.
    pub token_mask: Option<&'a [Vec<bool>]>,
    /// Layers run (the head sits on top of them).
    pub n_layers: usize,
    /// Variables of layers `from..` only (frozen below), or all.
    pub train_from_layer: Option<usize>,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub seed: u64,
    /// Validation windows for the end-of-epoch loss (all tokens).
    pub val: &'a [Vec<u32>],
}

fn inputs_targets(ws: &[&Vec<u32>]) -> (Vec<Vec<u32>>, Vec<u32>) {
    let inputs = ws.iter().map(|w| w[..w.len() - 1].to_vec()).collect();
    let targets = ws.iter().flat_map(|w| w[1..].iter().copied()).collect();
    (inputs, targets)
}

/// Per-token negative log-likelihood `[N]` of `targets` under `logits` `[B, T, V]`.
fn token_nll(logits: &Tensor, targets: &[u32], dev: &Device) -> Result<Tensor> {
    let v = logits.dim(D::Minus1)?;
    let logp = candle_nn::ops::log_softmax(&logits.reshape(((), v))?, D::Minus1)?;
    let tgt = Tensor::from_vec(targets.to_vec(), (targets.len(), 1), dev)?;
    Ok(logp.gather(&tgt, 1)?.squeeze(1)?.neg()?)
}

/// Trains one phase; returns its loss curve.
pub fn train_phase(model: &TrainModel, spec: &PhaseSpec) -> Result<Vec<CurvePoint>> {
    let dev = Device::Cpu;
    let vars = model.vars_from_layer(spec.train_from_layer)?;
    let mut opt = AdamW::new(
        vars,
        ParamsAdamW {
            lr: spec.lr,
            weight_decay: spec.weight_decay,
            ..Default::default()
        },
    )?;
    // Windows with nothing to train on (no hard token) are skipped.
    let mut order: Vec<usize> = (0..spec.windows.len())
        .filter(|&i| spec.token_mask.is_none_or(|m| m[i].iter().any(|&b| b)))
        .collect();
    if order.is_empty() {
        return Err(other(format!(
            "phase {}: no tokens to train on",
            spec.phase
        )));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(spec.seed);
    let mut curve = Vec::new();
    let mut step = 0;
    for epoch in 0..spec.epochs {
        order.shuffle(&mut rng);
        for batch in order.chunks(spec.batch_size) {
            let ws: Vec<&Vec<u32>> = batch.iter().map(|&i| &spec.windows[i]).collect();
            let (inputs, targets) = inputs_targets(&ws);
            let logits = model.forward(&inputs, spec.n_layers)?;
            let nll = token_nll(&logits, &targets, &dev)?;
            let loss = match spec.token_mask {
                None => nll.mean_all()?,
                Some(m) => {
                    let w: Vec<f32> = batch
                        .iter()
                        .flat_map(|&i| m[i].iter().map(|&b| if b { 1.0 } else { 0.0 }))
                        .collect();
                    let n: f32 = w.iter().sum();
                    let w = Tensor::from_vec(w, nll.dims(), &dev)?;
                    ((nll * w)?.sum_all()? / n as f64)?
                }
            };
            opt.backward_step(&loss)?;
            curve.push(CurvePoint {
                phase: spec.phase,
                epoch,
                step,
                split: "train",
                loss: loss.to_scalar::<f32>()? as f64,
            });
            step += 1;
        }
        if !spec.val.is_empty() {
            let stats = token_stats(model, spec.val, spec.n_layers)?;
            curve.push(CurvePoint {
                phase: spec.phase,
                epoch,
                step,
                split: "val",
                loss: stats.iter().map(|s| s.nll as f64).sum::<f64>() / stats.len() as f64,
            });
        }
    }
    Ok(curve)
}

/// One predicted token under one head.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenStat {
    pub nll: f32,
    pub max_prob: f32,
    pub true_prob: f32,
    pub correct: bool,
}

/// Per-token statistics of the head after `n_layers` blocks, window-major
/// (`seq_len` per window), evaluated in batches without training.
pub fn token_stats(
    model: &TrainModel,
    windows: &[Vec<u32>],
    n_layers: usize,
) -> Result<Vec<TokenStat>> {
    let dev = Device::Cpu;
    let mut out = Vec::new();
    for chunk in windows.chunks(256) {
        let ws: Vec<&Vec<u32>> = chunk.iter().collect();
        let (inputs, targets) = inputs_targets(&ws);
        let logits = model.forward(&inputs, n_layers)?.detach();
        let v = logits.dim(D::Minus1)?;
        let logp = candle_nn::ops::log_softmax(&logits.reshape(((), v))?, D::Minus1)?;
        let max_lp: Vec<f32> = logp.max(D::Minus1)?.to_vec1()?;
        let arg: Vec<u32> = logp.argmax(D::Minus1)?.to_dtype(DType::U32)?.to_vec1()?;
        let tgt = Tensor::from_vec(targets.clone(), (targets.len(), 1), &dev)?;
        let true_lp: Vec<f32> = logp.gather(&tgt, 1)?.squeeze(1)?.to_vec1()?;
        for i in 0..targets.len() {
            out.push(TokenStat {
                nll: -true_lp[i],
                max_prob: max_lp[i].exp(),
                true_prob: true_lp[i].exp(),
                correct: arg[i] == targets[i],
            });
        }
    }
    Ok(out)
}

/// exp(mean nll) and accuracy over the tokens `keep` selects.
pub fn ppl_acc(stats: &[TokenStat], keep: impl Fn(usize) -> bool) -> (f64, f64, usize) {
    let (mut nll, mut ok, mut n) = (0.0f64, 0usize, 0usize);
    for (_, s) in stats.iter().enumerate().filter(|(i, _)| keep(*i)) {
        nll += s.nll as f64;
        ok += s.correct as usize;
        n += 1;
    }
    if n == 0 {
        return (f64::NAN, f64::NAN, 0);
    }
    ((nll / n as f64).exp(), ok as f64 / n as f64, n)
}

/// The loss curves as a table: phase, epoch, step, split, loss.
pub fn curves_frame(curve: &[CurvePoint]) -> Result<DataFrame> {
    Ok(DataFrame::new_infer_height(vec![
        Column::new(
            "phase".into(),
            curve.iter().map(|c| c.phase).collect::<Vec<_>>(),
        ),
        Column::new(
            "epoch".into(),
            curve.iter().map(|c| c.epoch as u32).collect::<Vec<_>>(),
        ),
        Column::new(
            "step".into(),
            curve.iter().map(|c| c.step as u32).collect::<Vec<_>>(),
        ),
        Column::new(
            "split".into(),
            curve.iter().map(|c| c.split).collect::<Vec<_>>(),
        ),
        Column::new(
            "loss".into(),
            curve.iter().map(|c| c.loss).collect::<Vec<_>>(),
        ),
    ])?)
}
