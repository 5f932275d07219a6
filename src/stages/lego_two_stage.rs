//! Stage `lego_two_stage`: route every validation token of the phase-2
//! model by its shallow head's confidence (library: `eval::two_stage`). The
//! routing (both heads on every token) is one item keyed by the checkpoint
//! and the shallow depth; the threshold sweep is arithmetic over it.

use crate::dag::item::{ItemCtx, StoreFile};
use crate::dag::params::Params;
use crate::dag::stage::{StageCtx, StageKind};
use crate::error::Result;
use crate::eval::two_stage::{calibrate_threshold, route_tokens, two_stage, RoutedToken};
use crate::model::weights::LoadOptions;
use crate::model::Model;
use crate::plot::decor::RefLine;
use crate::plot::distribution::{step_histograms, Panel, Steps};
use crate::plot::histogram::bin_counts;
use crate::plot::{line_chart, Figure, Line};
use crate::table::write_parquet;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

pub const KIND: StageKind = StageKind {
    kind: "lego_two_stage",
    version: 1,
    inputs: &["train"],
    all_upstream: false,
    optional_inputs: &[],
    unhashed: &[],
    defaults: include_str!("../../stages/lego_two_stage.toml"),
    resolve,
    run,
    compute_item: Some(compute_item),
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TwoStageParams {
    thresholds: Vec<f64>,
    threshold: f64,
    target_deep_fraction: f64,
    shallow_layers: i64,
    bins: i64,
    formats: Vec<String>,
}

fn resolve(p: &mut Params) -> Result<()> {
    let x: TwoStageParams = p.parse()?;
    if x.thresholds.is_empty() {
        return Err(p.err("thresholds", "must list at least one threshold"));
    }
    if let Some(t) = x.thresholds.iter().find(|t| !(0.0..=1.0).contains(*t)) {
        return Err(p.err("thresholds", format!("{t} is outside [0, 1]")));
    }
    if !(0.0..=1.0).contains(&x.threshold) {
        return Err(p.err("threshold", format!("{} is outside [0, 1]", x.threshold)));
    }
    if !(0.0..1.0).contains(&x.target_deep_fraction) {
        return Err(p.err(
            "target_deep_fraction",
            format!("{} is outside [0, 1)", x.target_deep_fraction),
        ));
    }
    if x.shallow_layers < 0 {
        return Err(p.err("shallow_layers", "must be >= 0"));
    }
    if x.bins < 1 {
        return Err(p.err("bins", "must be >= 1"));
    }
    super::common::figure_formats(p, &x.formats).map(|_| ())
}

#[derive(Serialize, Deserialize)]
struct RouteWork {
    config: StoreFile,
    val: StoreFile,
    shallow_layers: usize,
}

/// (conf, shallow_nll, deep_nll, shallow_top1, deep_top1, target) per token.
type Row = (f32, f32, f32, u32, u32, u32);

#[derive(Deserialize)]
struct TrainSummary {
    phase1_layers: usize,
    phase2_layers: usize,
}

fn run(ctx: &StageCtx) -> Result<()> {
    let x: TwoStageParams = ctx.params.parse()?;
    let train = ctx.input("train")?;
    let s: TrainSummary = super::common::read_json(&train.path("summary.json"))?;
    let (ls, ld) = match x.shallow_layers as usize {
        0 => (s.phase1_layers, s.phase2_layers),
        l if l < s.phase2_layers => (l, s.phase2_layers),
        l => {
            return Err(ctx.params.err(
                "shallow_layers",
                format!("{l} must be below the model's {} layers", s.phase2_layers),
            ))
        }
    };
    let work = RouteWork {
        config: StoreFile::of(train, &train.path("phase2/config.json")),
        val: StoreFile::of(train, &train.path("val_windows.json")),
        shallow_layers: ls,
    };
    let preimage = serde_json::json!({
        "train": train.manifest.content_digest(),
        "shallow_layers": ls,
    });
    let spec = ctx.item_spec(
        preimage,
        serde_json::to_value(work).expect("work serializes"),
    );
    let mut progress = ctx.progress(1, "routings");
    let item = ctx.items(&[spec], &mut progress)?.remove(0);
    let rows: Vec<Row> = super::common::read_json(&item.path("routed.json"))?;
    let toks: Vec<RoutedToken> = rows
        .iter()
        .map(|r| RoutedToken {
            shallow_conf: r.0,
            shallow_nll: r.1,
            deep_nll: r.2,
            shallow_top1: r.3,
            deep_top1: r.4,
            target: r.5,
        })
        .collect();
    // Calibrated: the confidence below which the requested fraction of
    // validation tokens falls (those go deep); otherwise the fixed threshold.
    let threshold = if x.target_deep_fraction > 0.0 {
        let confs: Vec<f32> = toks.iter().map(|t| t.shallow_conf).collect();
        calibrate_threshold(&confs, x.target_deep_fraction)?
    } else {
        x.threshold
    };
    let mut reps = Vec::new();
    for &t in &x.thresholds {
        reps.push(two_stage(&toks, t, ls, ld)?);
    }
    let col = |f: fn(&crate::eval::two_stage::TwoStageReport) -> f64| {
        reps.iter().map(f).collect::<Vec<f64>>()
    };
    let mut sweep = DataFrame::new_infer_height(vec![
        Column::new("threshold".into(), col(|r| r.threshold)),
        Column::new("tokens".into(), col(|r| r.tokens as f64)),
        Column::new("shallow_ratio".into(), col(|r| r.shallow_ratio)),
        Column::new("compute_cost".into(), col(|r| r.compute_cost)),
        Column::new("ppl_two_stage".into(), col(|r| r.ppl_two_stage)),
        Column::new("ppl_deep".into(), col(|r| r.ppl_deep)),
        Column::new("ppl_shallow".into(), col(|r| r.ppl_shallow)),
        Column::new("acc_two_stage".into(), col(|r| r.acc_two_stage)),
        Column::new("acc_deep".into(), col(|r| r.acc_deep)),
        Column::new("top1_agreement".into(), col(|r| r.top1_agreement)),
    ])?;
    write_parquet(&mut sweep, &ctx.out.join("sweep.parquet"))?;
    let mut routed = DataFrame::new_infer_height(vec![
        Column::new(
            "shallow_conf".into(),
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        ),
        Column::new(
            "shallow_nll".into(),
            rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        ),
        Column::new(
            "deep_nll".into(),
            rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        ),
        Column::new(
            "shallow_top1".into(),
            rows.iter().map(|r| r.3).collect::<Vec<_>>(),
        ),
        Column::new(
            "deep_top1".into(),
            rows.iter().map(|r| r.4).collect::<Vec<_>>(),
        ),
        Column::new(
            "target".into(),
            rows.iter().map(|r| r.5).collect::<Vec<_>>(),
        ),
    ])?;
    write_parquet(&mut routed, &ctx.out.join("routed.parquet"))?;
    let at = two_stage(&toks, threshold, ls, ld)?;
    let summary = serde_json::json!({
        "shallow_layers": ls, "deep_layers": ld, "threshold": threshold,
        "target_deep_fraction": x.target_deep_fraction,
        "shallow_ratio": at.shallow_ratio, "compute_cost": at.compute_cost,
        "ppl_two_stage": at.ppl_two_stage, "ppl_deep": at.ppl_deep,
        "ppl_shallow": at.ppl_shallow, "acc_two_stage": at.acc_two_stage,
        "acc_deep": at.acc_deep, "top1_agreement": at.top1_agreement,
    });
    super::common::write_json(ctx.out, "summary.json", &summary)?;
    let confs: Vec<f64> = rows.iter().map(|r| r.0 as f64).collect();
    let hist = Figure::new(
        format!(
            "shallow-head confidence (threshold {:.3}: {:.0}% shallow)",
            threshold,
            100.0 * at.shallow_ratio
        ),
        "max probability of the shallow head",
        "tokens",
    );
    let bins = x.bins as usize;
    let edges: Vec<f64> = (0..=bins).map(|i| i as f64 / bins as f64).collect();
    let heights: Vec<f64> = bin_counts(&confs, &edges)
        .into_iter()
        .map(|c| c as f64)
        .collect();
    let panel = [Panel {
        title: String::new(),
        steps: vec![Steps::new("validation tokens", edges, heights)],
    }];
    let pts = |f: fn(&crate::eval::two_stage::TwoStageReport) -> f64| {
        reps.iter().map(|r| (r.threshold, f(r))).collect::<Vec<_>>()
    };
    let lines = [
        Line::new("compute cost", pts(|r| r.compute_cost)),
        Line::new("shallow ratio", pts(|r| r.shallow_ratio)),
        Line::new("accuracy", pts(|r| r.acc_two_stage)),
        Line::new("top-1 agreement with deep", pts(|r| r.top1_agreement)),
    ];
    let sweep_fig = Figure::new(
        "two-stage inference: threshold vs cost and quality",
        "threshold",
        "fraction",
    );
    for f in super::common::figure_formats(ctx.params, &x.formats)? {
        let e = f.ext();
        step_histograms(
            &hist,
            &panel,
            &[RefLine::new(format!("threshold {threshold:.3}"), threshold)],
            &ctx.out.join(format!("confidence.{e}")),
        )?;
        line_chart(
            &sweep_fig,
            &lines,
            &ctx.out.join(format!("threshold_sweep.{e}")),
        )?;
    }
    Ok(())
}

/// Both heads on every validation token, from the spec alone.
fn compute_item(item: &ItemCtx) -> Result<serde_json::Value> {
    let w: RouteWork = item.work()?;
    let cfg = item.file(&w.config)?;
    let dir = cfg.parent().expect("a checkpoint file has a directory");
    let model = Model::load_hf_dir(dir, &LoadOptions::f32())?;
    let val: Vec<Vec<u32>> = super::common::read_json(&item.file(&w.val)?)?;
    let toks = route_tokens(&model, &val, w.shallow_layers)?;
    let rows: Vec<Row> = toks
        .iter()
        .map(|t| {
            (
                t.shallow_conf,
                t.shallow_nll,
                t.deep_nll,
                t.shallow_top1,
                t.deep_top1,
                t.target,
            )
        })
        .collect();
    super::common::write_json(item.out, "routed.json", &serde_json::json!(rows))?;
    Ok(serde_json::Value::Null)
}
