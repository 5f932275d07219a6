//! Seed 001's LEGO run: phase 1 (shallow model on all tokens) → mining (the
//! shallow model's least confident `hard_example_ratio` of training tokens)
//! → phase 2 (layers added on top, trained on the hard tokens) → metrics.

use std::path::Path;

use candle_core::Device;

use super::config::TrainConfig;
use super::data::Corpus;
use super::mining::{score_of, select_hardest, Mined};
use super::model::{Shape, TrainModel};
use super::trainer::{curves_frame, ppl_acc, token_stats, train_phase, CurvePoint, PhaseSpec};
use crate::error::Result;

/// Validation metrics of one phase's model (its full depth).
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseMetrics {
    pub phase: u32,
    pub n_layers: usize,
    pub val_ppl: f64,
    pub val_acc: f64,
    /// Perplexity on the validation tokens the phase-1 model finds hard
    /// (mining score <= the mined threshold), the same set for both phases.
    pub hard_ppl: f64,
    pub hard_tokens: usize,
    pub val_tokens: usize,
    /// Mean NLL on the mined hard training tokens.
    pub hard_train_nll: f64,
}

pub struct LegoRun {
    pub model: TrainModel,
    pub mined: Mined,
    pub phase1: PhaseMetrics,
    pub phase2: PhaseMetrics,
    pub curve: Vec<CurvePoint>,
    pub train_windows: Vec<Vec<u32>>,
    pub val_windows: Vec<Vec<u32>>,
}

fn metrics(
    model: &TrainModel,
    phase: u32,
    n_layers: usize,
    val: &[Vec<u32>],
    val_hard: &[bool],
    train: &[Vec<u32>],
    mined: &Mined,
) -> Result<PhaseMetrics> {
    let st = token_stats(model, val, n_layers)?;
    let (val_ppl, val_acc, val_tokens) = ppl_acc(&st, |_| true);
    let (hard_ppl, _, hard_tokens) = ppl_acc(&st, |i| val_hard[i]);
    let tr = token_stats(model, train, n_layers)?;
    let hard: Vec<f64> = tr
        .iter()
        .zip(&mined.hard)
        .filter(|(_, &h)| h)
        .map(|(s, _)| s.nll as f64)
        .collect();
    Ok(PhaseMetrics {
        phase,
        n_layers,
        val_ppl,
        val_acc,
        hard_ppl,
        hard_tokens,
        val_tokens,
        hard_train_nll: hard.iter().sum::<f64>() / hard.len().max(1) as f64,
    })
}

/// Runs both phases. With `out_dir`, writes `phase1/` and `phase2/` (HF
/// llama checkpoints) and `loss_curves.parquet` there.
pub fn run_lego(cfg: &TrainConfig, corpus: &Corpus, out_dir: Option<&Path>) -> Result<LegoRun> {
    cfg.validate()?;
    let dev = Device::Cpu;
    let shape = Shape {
        vocab_size: corpus.vocab_size,
        dim: cfg.dim,
        n_heads: cfg.n_heads,
        intermediate_size: cfg.intermediate_size,
        n_layers: cfg.phase1_layers,
        rms_norm_eps: cfg.rms_norm_eps,
        rope_theta: cfg.rope_theta,
        max_position: 4096,
    };
    let mut model = TrainModel::new(shape, cfg.seed, &dev)?;
    let train = corpus.train_windows(cfg.phase1_samples, cfg.seq_len, cfg.seed);
    let val = corpus.val_windows(cfg.seq_len, cfg.max_val_windows);
    let (l1, l2) = (cfg.phase1_layers, cfg.phase2_layers);
    let spec = |phase, n_layers, mask, from, epochs| PhaseSpec {
        phase,
        windows: &train,
        token_mask: mask,
        n_layers,
        train_from_layer: from,
        epochs,
        batch_size: cfg.batch_size,
        lr: cfg.lr,
        weight_decay: cfg.weight_decay,
        seed: cfg.seed + phase as u64,
        val: &val,
    };
    let mut curve = train_phase(&model, &spec(1, l1, None, None, cfg.phase1_epochs))?;

    // Mining over every predicted training token of the phase-1 model.
    let tr = token_stats(&model, &train, l1)?;
    let scores: Vec<f32> = tr.iter().map(|s| score_of(s, cfg.mining_score)).collect();
    let mined = select_hardest(&scores, cfg.hard_example_ratio, cfg.mining_score)?;
    let vs = token_stats(&model, &val, l1)?;
    let val_hard: Vec<bool> = vs
        .iter()
        .map(|s| score_of(s, cfg.mining_score) <= mined.threshold)
        .collect();
    let phase1 = metrics(&model, 1, l1, &val, &val_hard, &train, &mined)?;
    if let Some(d) = out_dir {
        model.save_hf(&d.join("phase1"), l1)?;
    }

    model.grow(l2 - l1, cfg.seed)?;
    let mask: Vec<Vec<bool>> = mined.hard.chunks(cfg.seq_len).map(|c| c.to_vec()).collect();
    let from = cfg.freeze_shallow.then_some(l1);
    curve.extend(train_phase(
        &model,
        &spec(2, l2, Some(&mask), from, cfg.phase2_epochs),
    )?);
    let phase2 = metrics(&model, 2, l2, &val, &val_hard, &train, &mined)?;
    if let Some(d) = out_dir {
        model.save_hf(&d.join("phase2"), l2)?;
        crate::table::write_parquet(&mut curves_frame(&curve)?, &d.join("loss_curves.parquet"))?;
    }
    Ok(LegoRun {
        model,
        mined,
        phase1,
        phase2,
        curve,
        train_windows: train,
        val_windows: val,
    })
}
