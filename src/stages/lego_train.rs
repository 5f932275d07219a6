//! Stage `lego_train`: seed 001's two-phase LEGO training (library:
//! `train::lego::run_lego`) on a text input, tokenized byte-level or, with
//! the optional `model` input, by that GGUF's tokenizer.

use crate::dag::params::Params;
use crate::dag::stage::{StageCtx, StageKind};
use crate::error::Result;
use crate::plot::{line_chart, Figure, Line};
use crate::table::write_parquet;
use crate::train::config::{MiningScore, Tokenization, TrainConfig};
use crate::train::data::{read_text, tokenize, Corpus};
use crate::train::lego::{run_lego, PhaseMetrics};
use polars::prelude::*;
use serde::Deserialize;

pub const KIND: StageKind = StageKind {
    kind: "lego_train",
    version: 1,
    inputs: &["text"],
    all_upstream: false,
    optional_inputs: &["model"],
    unhashed: &[],
    defaults: include_str!("../../stages/lego_train.toml"),
    resolve,
    run,
    compute_item: None,
};

/// Seed 001's reported table (val PPL, hard-token PPL per phase).
const SEED_VAL_PPL: [f64; 2] = [986.0, 830.0];
const SEED_HARD_PPL: [f64; 2] = [2764.0, 668.0];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LegoTrainParams {
    seq_len: i64,
    dim: i64,
    n_heads: i64,
    intermediate_size: i64,
    phase1_layers: i64,
    phase2_layers: i64,
    phase1_samples: i64,
    hard_example_ratio: f64,
    mining_score: String,
    freeze_shallow: bool,
    batch_size: i64,
    phase1_epochs: i64,
    phase2_epochs: i64,
    lr: f64,
    weight_decay: f64,
    val_fraction: f64,
    max_val_windows: i64,
    seed: i64,
}

fn config(p: &Params) -> Result<TrainConfig> {
    let x: LegoTrainParams = p.parse()?;
    for (f, v) in [
        ("seq_len", x.seq_len),
        ("dim", x.dim),
        ("n_heads", x.n_heads),
        ("intermediate_size", x.intermediate_size),
        ("phase1_layers", x.phase1_layers),
        ("phase1_samples", x.phase1_samples),
        ("batch_size", x.batch_size),
        ("max_val_windows", x.max_val_windows),
    ] {
        if v <= 0 {
            return Err(p.err(f, format!("{v} must be positive")));
        }
    }
    for (f, v) in [
        ("phase1_epochs", x.phase1_epochs),
        ("phase2_epochs", x.phase2_epochs),
        ("seed", x.seed),
    ] {
        if v < 0 {
            return Err(p.err(f, format!("{v} must be >= 0")));
        }
    }
    if !(x.hard_example_ratio > 0.0 && x.hard_example_ratio < 1.0) {
        return Err(p.err(
            "hard_example_ratio",
            format!("{} is outside (0, 1)", x.hard_example_ratio),
        ));
    }
    if x.phase2_layers <= x.phase1_layers {
        return Err(p.err(
            "phase2_layers",
            format!(
                "{} must exceed phase1_layers {}",
                x.phase2_layers, x.phase1_layers
            ),
        ));
    }
    if x.dim % x.n_heads != 0 || (x.dim / x.n_heads) % 2 != 0 {
        return Err(p.err(
            "n_heads",
            format!(
                "dim {} / {} heads must be an even head_dim",
                x.dim, x.n_heads
            ),
        ));
    }
    if !(x.val_fraction > 0.0 && x.val_fraction < 1.0) {
        return Err(p.err(
            "val_fraction",
            format!("{} is outside (0, 1)", x.val_fraction),
        ));
    }
    if !(x.lr > 0.0 && x.lr.is_finite()) {
        return Err(p.err("lr", format!("{} must be a positive number", x.lr)));
    }
    let mining_score = match x.mining_score.as_str() {
        "max_prob" => MiningScore::MaxProb,
        "true_prob" => MiningScore::TrueProb,
        o => {
            return Err(p.err(
                "mining_score",
                format!("{o:?} is not max_prob or true_prob"),
            ))
        }
    };
    Ok(TrainConfig {
        seq_len: x.seq_len as usize,
        dim: x.dim as usize,
        n_heads: x.n_heads as usize,
        intermediate_size: x.intermediate_size as usize,
        phase1_layers: x.phase1_layers as usize,
        phase2_layers: x.phase2_layers as usize,
        phase1_samples: x.phase1_samples as usize,
        hard_example_ratio: x.hard_example_ratio,
        mining_score,
        freeze_shallow: x.freeze_shallow,
        batch_size: x.batch_size as usize,
        phase1_epochs: x.phase1_epochs as usize,
        phase2_epochs: x.phase2_epochs as usize,
        lr: x.lr,
        weight_decay: x.weight_decay,
        val_fraction: x.val_fraction,
        max_val_windows: x.max_val_windows as usize,
        seed: x.seed as u64,
        ..TrainConfig::default()
    })
}

fn resolve(p: &mut Params) -> Result<()> {
    config(p).map(|_| ())
}

fn metrics_frame(ps: &[&PhaseMetrics]) -> Result<DataFrame> {
    let col = |f: fn(&PhaseMetrics) -> f64| ps.iter().map(|m| f(m)).collect::<Vec<f64>>();
    Ok(DataFrame::new_infer_height(vec![
        Column::new(
            "phase".into(),
            ps.iter().map(|m| m.phase as i64).collect::<Vec<_>>(),
        ),
        Column::new("n_layers".into(), col(|m| m.n_layers as f64)),
        Column::new("val_ppl".into(), col(|m| m.val_ppl)),
        Column::new("val_acc".into(), col(|m| m.val_acc)),
        Column::new("hard_ppl".into(), col(|m| m.hard_ppl)),
        Column::new("hard_tokens".into(), col(|m| m.hard_tokens as f64)),
        Column::new("val_tokens".into(), col(|m| m.val_tokens as f64)),
        Column::new("hard_train_nll".into(), col(|m| m.hard_train_nll)),
        Column::new("seed_val_ppl".into(), SEED_VAL_PPL.to_vec()),
        Column::new("seed_hard_ppl".into(), SEED_HARD_PPL.to_vec()),
    ])?)
}

fn phase_json(m: &PhaseMetrics) -> serde_json::Value {
    let i = (m.phase as usize).saturating_sub(1).min(1);
    serde_json::json!({
        "phase": m.phase, "n_layers": m.n_layers, "val_ppl": m.val_ppl,
        "val_acc": m.val_acc, "hard_ppl": m.hard_ppl, "hard_tokens": m.hard_tokens,
        "val_tokens": m.val_tokens, "hard_train_nll": m.hard_train_nll,
        "seed_val_ppl": SEED_VAL_PPL[i], "seed_hard_ppl": SEED_HARD_PPL[i],
    })
}

fn run(ctx: &StageCtx) -> Result<()> {
    let mut cfg = config(ctx.params)?;
    let x: LegoTrainParams = ctx.params.parse()?;
    if ctx.inputs.contains_key("model") {
        cfg.tokenization = Tokenization::Gguf(super::common::model_file(ctx)?);
    }
    let text = read_text(&ctx.input_file("text", "")?)?;
    let (ids, vocab) = tokenize(&text, &cfg.tokenization)?;
    let n_train = ids.len() - ((ids.len() as f64) * cfg.val_fraction).round() as usize;
    if n_train < cfg.seq_len + 1 {
        return Err(ctx.params.err(
            "inputs.text",
            format!(
                "the training set has {n_train} tokens, fewer than one window of {}",
                cfg.seq_len + 1
            ),
        ));
    }
    if ids.len() - n_train < cfg.seq_len + 1 {
        return Err(ctx.params.err(
            "val_fraction",
            format!(
                "the validation split has {} tokens, fewer than one window of {}",
                ids.len() - n_train,
                cfg.seq_len + 1
            ),
        ));
    }
    let corpus = Corpus::from_ids(ids, vocab, &cfg)?;
    let r = run_lego(&cfg, &corpus, Some(ctx.out))?;
    write_parquet(
        &mut metrics_frame(&[&r.phase1, &r.phase2])?,
        &ctx.out.join("metrics.parquet"),
    )?;
    let n = r.mined.hard.len();
    let mut mined = DataFrame::new_infer_height(vec![
        Column::new(
            "window".into(),
            (0..n).map(|i| (i / cfg.seq_len) as i64).collect::<Vec<_>>(),
        ),
        Column::new(
            "pos".into(),
            (0..n).map(|i| (i % cfg.seq_len) as i64).collect::<Vec<_>>(),
        ),
        Column::new("hard".into(), r.mined.hard.clone()),
    ])?;
    write_parquet(&mut mined, &ctx.out.join("mined.parquet"))?;
    super::common::write_json(
        ctx.out,
        "val_windows.json",
        &serde_json::json!(r.val_windows),
    )?;
    let summary = serde_json::json!({
        "phase1_layers": cfg.phase1_layers,
        "phase2_layers": cfg.phase2_layers,
        "vocab_size": vocab,
        "mining": {
            "score": x.mining_score, "ratio": cfg.hard_example_ratio,
            "n_tokens": n, "n_hard": r.mined.n_hard, "threshold": r.mined.threshold,
        },
        "phases": [phase_json(&r.phase1), phase_json(&r.phase2)],
    });
    super::common::write_json(ctx.out, "summary.json", &summary)?;
    let mut lines = Vec::new();
    for phase in [1u32, 2] {
        for split in ["train", "val"] {
            let pts: Vec<(f64, f64)> = r
                .curve
                .iter()
                .filter(|c| c.phase == phase && c.split == split)
                .map(|c| (c.step as f64, c.loss))
                .collect();
            if !pts.is_empty() {
                lines.push(Line::new(format!("phase {phase} {split}"), pts));
            }
        }
    }
    let fig = Figure::new("LEGO loss curves", "step", "loss (nats/token)");
    line_chart(&fig, &lines, &ctx.out.join("loss_curves.svg"))?;
    Ok(())
}
