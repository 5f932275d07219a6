//! Stage `plot`: histograms of document lengths (from the analysis), chunk
//! lengths (from `chunks`, when wired) and task context lengths by task
//! (from `tasks`, when wired), each written in every requested format.

use super::analyze::scan_checked;
use crate::analysis::columns::{self, Kind};
use crate::dag::params::Params;
use crate::dag::stage::{StageCtx, StageKind};
use crate::error::Result;
use crate::plot::{histogram, Figure, Format, Series};
use polars::prelude::*;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const KIND: StageKind = StageKind {
    kind: "plot",
    version: 1,
    inputs: &["analysis"],
    all_upstream: false,
    optional_inputs: &["chunks", "tasks"],
    unhashed: &[],
    defaults: include_str!("../../stages/plot.toml"),
    resolve,
    run,
    compute_item: None,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlotParams {
    pub width: u32,
    pub height: u32,
    pub bins: u32,
    pub formats: Vec<String>,
}

impl PlotParams {
    /// The formats, checked: a non-empty subset of png/svg without repeats.
    pub fn formats(&self) -> std::result::Result<Vec<Format>, String> {
        let mut out = Vec::new();
        for f in &self.formats {
            let Some(fmt) = Format::parse(f) else {
                return Err(format!("unknown format {f:?} (known: png, svg)"));
            };
            if out.contains(&fmt) {
                return Err(format!("format {f:?} is listed twice"));
            }
            out.push(fmt);
        }
        if out.is_empty() {
            return Err("list at least one format (png, svg)".into());
        }
        Ok(out)
    }
}

fn resolve(p: &mut Params) -> Result<()> {
    let v: PlotParams = p.parse()?;
    for (name, value) in [("width", v.width), ("height", v.height)] {
        if !(100..=10_000).contains(&value) {
            return Err(p.err(name, format!("{value} pixels is outside 100..=10000")));
        }
    }
    if !(1..=1000).contains(&v.bins) {
        return Err(p.err("bins", format!("{} is outside 1..=1000", v.bins)));
    }
    v.formats().map_err(|m| p.err("formats", m))?;
    Ok(())
}

fn run(ctx: &StageCtx) -> Result<()> {
    let params: PlotParams = ctx.params.parse()?;
    let analysis = ctx.input("analysis")?;
    let chunks = ctx.inputs.get("chunks").map(|a| a.path("chunks.parquet"));
    let tasks = ctx.inputs.get("tasks").map(|a| a.path("tasks.parquet"));
    let files = plot(
        &params,
        &analysis.dir,
        chunks.as_deref(),
        tasks.as_deref(),
        ctx.out,
    )?;
    tracing::info!(stage = ctx.name(), figures = files.len(), "plots written");
    Ok(())
}

/// Draw every figure the inputs allow into `out`; returns the files written.
/// `analysis` is the directory of an `analyze` artifact.
pub fn plot(
    params: &PlotParams,
    analysis: &Path,
    chunks: Option<&Path>,
    tasks: Option<&Path>,
    out: &Path,
) -> Result<Vec<PathBuf>> {
    let formats = params.formats().map_err(crate::error::other)?;
    let bins = params.bins as usize;
    let size = |f: Figure| f.size(params.width, params.height);
    let mut written = Vec::new();
    let mut draw = |stem: &str, fig: &Figure, series: &[Series]| -> Result<()> {
        for fmt in &formats {
            let path = out.join(format!("{stem}.{}", fmt.ext()));
            histogram(fig, series, bins, &path)?;
            written.push(path);
        }
        Ok(())
    };

    let stats = scan_checked(
        &analysis.join("token_stats.parquet"),
        &[("dataset", Kind::Str)],
    )?
    .collect()?;
    let dataset = stats
        .column("dataset")?
        .str()?
        .get(0)
        .unwrap_or("dataset")
        .to_string();

    let doc_tokens = numbers(
        scan_checked(
            &analysis.join("doc_stats.parquet"),
            &[("n_tokens", Kind::Int)],
        )?,
        "n_tokens",
    )?;
    let fig = size(Figure::new(
        format!(
            "Document length — {dataset} ({} docs, mean {:.0} tokens)",
            doc_tokens.len(),
            mean(&doc_tokens)
        ),
        "document length (tokens)",
        "documents (count)",
    ));
    draw(
        "doc_tokens",
        &fig,
        &[Series::new(dataset.as_str(), doc_tokens)],
    )?;

    if let Some(path) = chunks {
        let n_tok = numbers(scan_checked(path, columns::CHUNKS)?, "n_tok")?;
        let fig = size(Figure::new(
            format!(
                "Chunk length — {dataset} ({} chunks, median {} tokens)",
                n_tok.len(),
                median(&n_tok)
            ),
            "chunk length (tokens)",
            "chunks (count)",
        ));
        draw(
            "chunk_lengths",
            &fig,
            &[Series::new(dataset.as_str(), n_tok)],
        )?;
    }

    if let Some(path) = tasks {
        let by_task = per_task(scan_checked(path, columns::TASKS)?)?;
        let n: usize = by_task.iter().map(|s| s.values.len()).sum();
        let fig = size(Figure::new(
            format!(
                "Context length by task ({n} samples, {} tasks)",
                by_task.len()
            ),
            "context length (tokens)",
            "samples (count)",
        ));
        draw("context_lengths", &fig, &by_task)?;
    }
    Ok(written)
}

/// One numeric column as f64, nulls dropped.
fn numbers(lf: LazyFrame, column: &str) -> Result<Vec<f64>> {
    let df = lf.select([col(column).cast(DataType::Float64)]).collect()?;
    Ok(df.column(column)?.f64()?.iter().flatten().collect())
}

/// Actual context lengths grouped by task, tasks in name order.
fn per_task(tasks: LazyFrame) -> Result<Vec<Series>> {
    let df = tasks
        .select([col("task"), col("n_context_tokens").cast(DataType::Float64)])
        .collect()?;
    let mut groups: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let names = df.column("task")?.str()?;
    let values = df.column("n_context_tokens")?.f64()?;
    for (task, v) in names.iter().zip(values.iter()) {
        if let (Some(task), Some(v)) = (task, v) {
            groups.entry(task.to_string()).or_default().push(v);
        }
    }
    Ok(groups.into_iter().map(|(t, v)| Series::new(t, v)).collect())
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Median for the title (integer-valued data: shown without decimals).
fn median(v: &[f64]) -> String {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let m = match s.len() {
        0 => return "n/a".into(),
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    };
    format!("{}", (m * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testdata::{chunks_fixture, tasks_fixture, write_fixture};
    use crate::plot::testing::{assert_png, assert_svg_has, cleanup, tempdir};

    fn params(p: &Params) -> Result<()> {
        let mut p = p.clone();
        resolve(&mut p)
    }

    #[test]
    fn plot_stage_draws_every_figure() {
        let dir = tempdir("plot-stage");
        let chunks = write_fixture(&dir, "chunks.parquet", chunks_fixture());
        let tasks = write_fixture(&dir, "tasks.parquet", tasks_fixture());
        let analysis = dir.join("analysis");
        std::fs::create_dir_all(&analysis).unwrap();
        crate::stages::analyze::analyze(&chunks, Some(&tasks), "toy", &analysis).unwrap();
        let out = dir.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let p = PlotParams {
            width: 900,
            height: 500,
            bins: 20,
            formats: vec!["png".into(), "svg".into()],
        };
        let files = plot(&p, &analysis, Some(&chunks), Some(&tasks), &out).unwrap();
        assert_eq!(files.len(), 6);
        for stem in ["doc_tokens", "chunk_lengths", "context_lengths"] {
            assert_png(&out.join(format!("{stem}.png")), 900, 500);
        }
        assert_svg_has(
            &out.join("chunk_lengths.svg"),
            &[
                "Chunk length — toy (6 chunks, median 3.5 tokens)",
                "chunk length (tokens)",
                "chunks (count)",
            ],
        );
        assert_svg_has(
            &out.join("doc_tokens.svg"),
            &["3 docs, mean 6 tokens", "document length (tokens)"],
        );
        assert_svg_has(
            &out.join("context_lengths.svg"),
            &[
                "6 samples, 3 tasks",
                "samples (count)",
                "needle",
                "multidoc_qa",
            ],
        );

        // only the analysis: only the document figure, only SVG
        let out2 = dir.join("out2");
        std::fs::create_dir_all(&out2).unwrap();
        let p = PlotParams {
            formats: vec!["svg".into()],
            ..p
        };
        let files = plot(&p, &analysis, None, None, &out2).unwrap();
        assert_eq!(files, vec![out2.join("doc_tokens.svg")]);
        cleanup(&dir);
    }

    #[test]
    fn plot_params_are_checked() {
        let defaults = KIND.defaults().unwrap();
        let p = Params {
            table: defaults,
            file: "p.toml".into(),
            stage: "figs".into(),
        };
        params(&p).unwrap();
        let with = |k: &str, v: toml::Value| {
            let mut q = p.clone();
            q.table.insert(k.into(), v);
            params(&q).unwrap_err().to_string()
        };
        assert!(with("width", toml::Value::Integer(0)).contains("stages.figs.width"));
        assert!(with("height", toml::Value::Integer(20_000)).contains("stages.figs.height"));
        assert!(with("bins", toml::Value::Integer(0)).contains("stages.figs.bins"));
        assert!(with("bins", toml::Value::Integer(-3)).contains("stages.figs"));
        let fmts = |v: &[&str]| {
            toml::Value::Array(
                v.iter()
                    .map(|s| toml::Value::String(s.to_string()))
                    .collect(),
            )
        };
        assert!(with("formats", fmts(&["png", "pdf"])).contains("unknown format \"pdf\""));
        assert!(with("formats", fmts(&[])).contains("stages.figs.formats"));
        assert!(with("formats", fmts(&["svg", "svg"])).contains("twice"));
    }
}
