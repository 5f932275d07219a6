//! Stage `lego_early_exit`: true early exit (library:
//! `decode::early_exit`), one item per (threshold, deep-KV strategy); the
//! item's wall time is a measurement, its tokens and exits are its files.

use crate::dag::item::{ItemCtx, StoreFile};
use crate::dag::params::Params;
use crate::dag::stage::{StageCtx, StageKind};
use crate::decode::early_exit::{full_model_nll, generate_early_exit, DeepKv, EarlyExitOpts};
use crate::error::{other, Result};
use crate::plot::{line_chart, Figure, Line};
use crate::table::write_parquet;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

pub const KIND: StageKind = StageKind {
    kind: "lego_early_exit",
    version: 1,
    inputs: &["train"],
    all_upstream: false,
    optional_inputs: &["model", "text"],
    unhashed: &[],
    defaults: include_str!("../../stages/lego_early_exit.toml"),
    resolve,
    run,
    compute_item: Some(compute_item),
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EarlyExitParams {
    thresholds: Vec<f64>,
    strategies: Vec<String>,
    n_prompts: i64,
    prompt_tokens: i64,
    max_new_tokens: i64,
    exit_layer: i64,
    formats: Vec<String>,
}

fn resolve(p: &mut Params) -> Result<()> {
    let x: EarlyExitParams = p.parse()?;
    if let Some(t) = x.thresholds.iter().find(|t| !(0.0..=1.0).contains(*t)) {
        return Err(p.err("thresholds", format!("{t} is outside [0, 1]")));
    }
    if x.strategies.is_empty() {
        return Err(p.err("strategies", "must name lazy and/or propagate"));
    }
    if let Some(s) = x
        .strategies
        .iter()
        .find(|s| *s != "lazy" && *s != "propagate")
    {
        return Err(p.err("strategies", format!("{s:?} is not lazy or propagate")));
    }
    for (f, v) in [
        ("n_prompts", x.n_prompts),
        ("prompt_tokens", x.prompt_tokens),
        ("max_new_tokens", x.max_new_tokens),
    ] {
        if v < 1 {
            return Err(p.err(f, format!("{v} must be >= 1")));
        }
    }
    if x.exit_layer < 0 {
        return Err(p.err("exit_layer", "must be >= 0"));
    }
    super::common::figure_formats(p, &x.formats).map(|_| ())
}

#[derive(Serialize, Deserialize)]
struct ExitWork {
    /// A GGUF, or a checkpoint's config.json (its directory is loaded).
    model: StoreFile,
    prompts: Vec<Vec<u32>>,
    exit_layer: usize,
    threshold: f64,
    strategy: String,
    max_new_tokens: usize,
}

#[derive(Serialize, Deserialize)]
struct ExitOut {
    new_ids: Vec<Vec<u32>>,
    exited: Vec<Vec<bool>>,
    nll: Vec<f64>,
}

#[derive(Deserialize)]
struct TrainSummary {
    phase1_layers: usize,
}

fn prompts_and_model(
    ctx: &StageCtx,
    x: &EarlyExitParams,
) -> Result<(StoreFile, String, Vec<Vec<u32>>, usize)> {
    let (n, len) = (x.n_prompts as usize, x.prompt_tokens as usize);
    if ctx.inputs.contains_key("model") {
        if x.exit_layer == 0 {
            return Err(ctx
                .params
                .err("exit_layer", "must be set (> 0) with a model input"));
        }
        let gguf = super::common::model_file(ctx)?;
        let model = ctx.input("model")?;
        let text = std::fs::read_to_string(ctx.input_file("text", "")?)
            .map_err(|e| ctx.params.err("inputs.text", e))?;
        let ids = crate::loaded::tokenizer(&gguf)?.encode(&text)?;
        let prompts: Vec<Vec<u32>> = ids.chunks_exact(len).take(n).map(|c| c.to_vec()).collect();
        return Ok((
            StoreFile::of(model, &gguf),
            model.manifest.content_digest(),
            prompts,
            x.exit_layer as usize,
        ));
    }
    let train = ctx.input("train")?;
    let s: TrainSummary = super::common::read_json(&train.path("summary.json"))?;
    let val: Vec<Vec<u32>> = super::common::read_json(&train.path("val_windows.json"))?;
    let prompts: Vec<Vec<u32>> = val
        .iter()
        .take(n)
        .map(|w| w[..len.min(w.len())].to_vec())
        .collect();
    let exit = if x.exit_layer == 0 {
        s.phase1_layers
    } else {
        x.exit_layer as usize
    };
    let cfg = train.path("phase2/config.json");
    Ok((
        StoreFile::of(train, &cfg),
        train.manifest.content_digest(),
        prompts,
        exit,
    ))
}

fn run(ctx: &StageCtx) -> Result<()> {
    let x: EarlyExitParams = ctx.params.parse()?;
    let (model, digest, prompts, exit_layer) = prompts_and_model(ctx, &x)?;
    if prompts.is_empty() {
        return Err(ctx.params.err("n_prompts", "the text yields no prompt"));
    }
    let mut thresholds = x.thresholds.clone();
    if !thresholds.contains(&1.0) {
        thresholds.push(1.0);
    }
    let mut cells = Vec::new();
    let mut specs = Vec::new();
    for s in &x.strategies {
        for &t in &thresholds {
            let preimage = serde_json::json!({
                "model": digest, "prompts": prompts, "exit_layer": exit_layer,
                "threshold": t, "strategy": s, "max_new_tokens": x.max_new_tokens,
            });
            let work = ExitWork {
                model: model.clone(),
                prompts: prompts.clone(),
                exit_layer,
                threshold: t,
                strategy: s.clone(),
                max_new_tokens: x.max_new_tokens as usize,
            };
            specs.push(ctx.item_spec(
                preimage,
                serde_json::to_value(work).expect("work serializes"),
            ));
            cells.push((s.clone(), t));
        }
    }
    let mut progress = ctx.progress(specs.len() as u64, "cells");
    let items = ctx.items(&specs, &mut progress)?;
    let mut outs = Vec::new();
    for item in &items {
        let o: ExitOut = super::common::read_json(&item.path("exit.json"))?;
        let wall = item.manifest.provenance.measurements["wall_s"]
            .as_f64()
            .ok_or_else(|| other(format!("item {}: no wall_s", item.key())))?;
        outs.push((o, wall));
    }
    let base = |s: &str| {
        cells
            .iter()
            .position(|(cs, t)| cs == s && *t == 1.0)
            .expect("threshold 1 is in every strategy")
    };
    let (mut th, mut st, mut ratio, mut tps, mut speed, mut nll, mut agree) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for ((s, t), (o, wall)) in cells.iter().zip(&outs) {
        let (bo, bwall) = &outs[base(s)];
        let ntok: usize = o.new_ids.iter().map(|v| v.len()).sum();
        let nexit: usize = o.exited.iter().flatten().filter(|&&e| e).count();
        let nsteps: usize = o.exited.iter().map(|v| v.len()).sum();
        let same: usize = o
            .new_ids
            .iter()
            .zip(&bo.new_ids)
            .map(|(a, b)| a.iter().zip(b).take_while(|(x, y)| x == y).count())
            .sum();
        th.push(*t);
        st.push(s.clone());
        ratio.push(nexit as f64 / nsteps.max(1) as f64);
        tps.push(ntok as f64 / wall);
        speed.push(bwall / wall);
        nll.push(o.nll.iter().sum::<f64>() / o.nll.len().max(1) as f64);
        agree.push(same as f64 / ntok.max(1) as f64);
    }
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("threshold".into(), th.clone()),
        Column::new("strategy".into(), st.clone()),
        Column::new("exit_layer".into(), vec![exit_layer as i64; th.len()]),
        Column::new("shallow_ratio".into(), ratio),
        Column::new("tokens_per_s".into(), tps),
        Column::new("speedup".into(), speed.clone()),
        Column::new("full_model_nll".into(), nll),
        Column::new("greedy_prefix_agreement".into(), agree),
    ])?;
    write_parquet(&mut df, &ctx.out.join("early_exit.parquet"))?;
    let lines: Vec<Line> = x
        .strategies
        .iter()
        .map(|s| {
            let mut pts: Vec<(f64, f64)> = (0..th.len())
                .filter(|&i| &st[i] == s)
                .map(|i| (th[i], speed[i]))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            Line::new(s.clone(), pts)
        })
        .collect();
    let fig = Figure::new(
        "true early exit: speedup over plain greedy",
        "threshold",
        "speedup",
    );
    for f in super::common::figure_formats(ctx.params, &x.formats)? {
        line_chart(&fig, &lines, &ctx.out.join(format!("speedup.{}", f.ext())))?;
    }
    Ok(())
}

fn compute_item(item: &ItemCtx) -> Result<serde_json::Value> {
    let w: ExitWork = item.work()?;
    let model = super::common::load_model(&item.file(&w.model)?)?;
    let opts = EarlyExitOpts {
        exit_layer: w.exit_layer,
        threshold: w.threshold,
        max_new_tokens: w.max_new_tokens,
        deep_kv: if w.strategy == "lazy" {
            DeepKv::Lazy
        } else {
            DeepKv::Propagate
        },
        stop_ids: vec![],
    };
    let mut out = ExitOut {
        new_ids: vec![],
        exited: vec![],
        nll: vec![],
    };
    let mut wall = 0.0;
    for p in &w.prompts {
        let g = generate_early_exit(&model, p, &opts)?;
        wall += g.wall_s;
        out.nll.push(full_model_nll(&model, p, &g.new_ids)?);
        out.new_ids.push(g.new_ids);
        out.exited.push(g.exited);
    }
    super::common::write_json(
        item.out,
        "exit.json",
        &serde_json::to_value(&out).expect("serializes"),
    )?;
    Ok(serde_json::json!({ "wall_s": wall }))
}
