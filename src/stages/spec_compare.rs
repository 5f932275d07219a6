//! Stage `spec_compare`: generate stages side by side — the baseline (plain
//! decoding) and up to five speculative variants — as one table and two bar
//! charts (library: `analysis::spec_compare`); with press roles, seed 004's
//! third table too (speculation + a KV press, with the perplexity of a
//! `press_eval` input; library: `analysis::spec_press`).

use crate::analysis::spec_compare::compare;
use crate::analysis::spec_press::press_table;
use crate::dag::params::Params;
use crate::dag::stage::{StageCtx, StageKind};
use crate::error::Result;
use crate::plot::bars::{bar_chart, BarOptions, Group};
use crate::plot::Figure;
use crate::table::write_parquet;
use serde::Deserialize;

/// The roles after `baseline`, in table order; the press table's roles
/// (its reference, speculation without a press, first); `perplexity`.
const OPTIONAL: &[&str] = &[
    "speculative",
    "dynamic",
    "cascade",
    "lookup",
    "other",
    "spec_model",
    "press_target",
    "press_draft",
    "press_both",
    "press_dynamic",
    "perplexity",
];
const VARIANTS: &[&str] = OPTIONAL.split_at(OPTIONAL.len() - 1).0;
const PRESS_ROLES: &[&str] = VARIANTS.split_at(5).1;

pub const KIND: StageKind = StageKind {
    kind: "spec_compare",
    version: 2,
    inputs: &["baseline"],
    all_upstream: false,
    optional_inputs: OPTIONAL,
    unhashed: &[],
    defaults: include_str!("../../stages/spec_compare.toml"),
    resolve,
    run,
    compute_item: None,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompareParams {
    width: u32,
    height: u32,
    formats: Vec<String>,
}

impl CompareParams {
    fn plot(&self) -> super::plot::PlotParams {
        super::plot::PlotParams {
            width: self.width,
            height: self.height,
            bins: 1,
            formats: self.formats.clone(),
        }
    }
}

fn resolve(p: &mut Params) -> Result<()> {
    let c: CompareParams = p.parse()?;
    for (name, v) in [("width", c.width), ("height", c.height)] {
        if !(100..=10000).contains(&v) {
            return Err(p.err(name, format!("{v} is outside 100..=10000")));
        }
    }
    c.plot()
        .formats()
        .map_err(|m| p.err("formats", m))
        .map(|_| ())
}

fn run(ctx: &StageCtx) -> Result<()> {
    let c: CompareParams = ctx.params.parse()?;
    let mut inputs = Vec::new();
    for role in std::iter::once(&"baseline").chain(VARIANTS) {
        if ctx.inputs.contains_key(*role) {
            inputs.push((role.to_string(), ctx.input_file(role, "outputs.parquet")?));
        }
    }
    let refs: Vec<(String, &std::path::Path)> = inputs
        .iter()
        .map(|(r, p)| (r.clone(), p.as_path()))
        .collect();
    let mut table = compare(&refs)?;
    write_parquet(&mut table, &ctx.out.join("comparison.parquet"))?;
    write_parquet(&mut table, &ctx.out.join("summary.parquet"))?;
    let press_refs: Vec<(String, &std::path::Path)> = refs
        .iter()
        .filter(|(r, _)| PRESS_ROLES.contains(&r.as_str()))
        .cloned()
        .collect();
    if !press_refs.is_empty() {
        let ppl = if ctx.inputs.contains_key("perplexity") {
            Some(ctx.input_file("perplexity", "retention.parquet")?)
        } else {
            None
        };
        let mut t = press_table(&press_refs, ppl.as_deref())?;
        write_parquet(&mut t, &ctx.out.join("press.parquet"))?;
    }
    let labels: Vec<String> = {
        let role = table.column("role")?.str()?;
        let method = table.column("method")?.str()?;
        (0..table.height())
            .map(|i| {
                format!(
                    "{} {}",
                    role.get(i).unwrap_or(""),
                    method.get(i).unwrap_or("")
                )
            })
            .collect()
    };
    let values = |name: &str| -> Result<Vec<f64>> {
        let c = table.column(name)?.f64()?;
        Ok((0..c.len()).map(|i| c.get(i).unwrap_or(f64::NAN)).collect())
    };
    let formats = c
        .plot()
        .formats()
        .map_err(|m| ctx.params.err("formats", m))?;
    for (file, title, y, groups) in [
        (
            "tokens_per_s",
            "Decoding speed per method",
            "tokens / s (mean over prompts)",
            vec![Group::new("tokens/s", values("tokens_per_s")?)],
        ),
        (
            "acceptance",
            "Draft acceptance per method",
            "rate / tokens",
            vec![
                Group::new("acceptance rate", values("acceptance_rate")?),
                Group::new("mean accepted length", values("mean_accepted_len")?),
            ],
        ),
    ] {
        let fig = Figure::new(title, "method", y).size(c.width, c.height);
        for f in &formats {
            let path = ctx.out.join(format!("{file}.{}", f.ext()));
            bar_chart(&fig, &labels, &groups, &BarOptions::default(), &path)?;
        }
    }
    Ok(())
}
