//! Stage `rekv`: the ReKV analysis of a speculative `generate` stage's
//! `rejections.parquet` — tables, verdicts and figures (library:
//! `analysis::rekv*`).

use crate::analysis::rekv_figures::FigureOptions;
use crate::analysis::rekv_output::rekv_run;
use crate::analysis::rekv_verdict::Thresholds;
use crate::dag::params::Params;
use crate::dag::stage::{StageCtx, StageKind};
use crate::error::Result;
use crate::table::{read_parquet, write_parquet};
use polars::prelude::DataFrame;
use serde::Deserialize;

pub const KIND: StageKind = StageKind {
    kind: "rekv",
    version: 1,
    inputs: &["decode"],
    all_upstream: false,
    optional_inputs: &["decode2", "decode3"],
    unhashed: &[],
    defaults: include_str!("../../stages/rekv.toml"),
    resolve,
    run,
    compute_item: None,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RekvParams {
    go: f64,
    caution: f64,
    width: u32,
    height: u32,
    formats: Vec<String>,
}

impl RekvParams {
    fn figures(&self, p: &Params) -> Result<FigureOptions> {
        let plot = super::plot::PlotParams {
            width: self.width,
            height: self.height,
            bins: 1,
            formats: self.formats.clone(),
        };
        let formats = plot.formats().map_err(|m| p.err("formats", m))?;
        Ok(FigureOptions {
            width: self.width,
            height: self.height,
            formats,
        })
    }
}

fn resolve(p: &mut Params) -> Result<()> {
    let r: RekvParams = p.parse()?;
    if !(0.0 < r.caution && r.caution <= r.go && r.go <= 1.0) {
        return Err(p.err(
            "go",
            format!(
                "need 0 < caution <= go <= 1, got caution {} and go {}",
                r.caution, r.go
            ),
        ));
    }
    for (name, v) in [("width", r.width), ("height", r.height)] {
        if !(100..=10000).contains(&v) {
            return Err(p.err(name, format!("{v} is outside 100..=10000")));
        }
    }
    r.figures(p).map(|_| ())
}

fn run(ctx: &StageCtx) -> Result<()> {
    let r: RekvParams = ctx.params.parse()?;
    let thresholds = Thresholds::new(r.go, r.caution).map_err(|e| ctx.params.err("go", e))?;
    // Several speculative stages (e.g. one per prompt dataset) are analysed as one table.
    let mut all: Option<DataFrame> = None;
    for role in ["decode", "decode2", "decode3"] {
        if !ctx.inputs.contains_key(role) {
            continue;
        }
        let path = ctx.input_file(role, "rejections.parquet").map_err(|_| {
            ctx.params.err(
                &format!("inputs.{role}"),
                "no rejections.parquet: wire a generate stage with a draft and rekv = true",
            )
        })?;
        let df = read_parquet(&path)?;
        match &mut all {
            None => all = Some(df),
            Some(a) => {
                a.vstack_mut(&df)?;
            }
        }
    }
    let mut all = all.expect("decode is a required input");
    all.rechunk_mut();
    let combined = ctx.out.join("rejections.parquet");
    write_parquet(&mut all, &combined)?;
    rekv_run(&combined, thresholds, &r.figures(ctx.params)?, ctx.out)?;
    Ok(())
}
