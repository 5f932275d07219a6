//! Retention-vs-ratio figures of a press matrix: one line chart per task
//! (its headline metric: `ppl` for perplexity, `contains` for QA), one line
//! per press, from `retention.parquet`.

use crate::error::Result;
use crate::plot::line::{line_chart, Line};
use crate::plot::Figure;
use crate::table::read_parquet;
use std::collections::BTreeMap;
use std::path::Path;

/// A file-name-safe stem for a task name (`perplexity:alice29` ->
/// `perplexity_alice29`).
pub fn stem(task: &str) -> String {
    task.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Writes `retention_<task>.svg` into `out` for every task of the table.
pub fn retention_figures(retention: &Path, out: &Path) -> Result<Vec<String>> {
    let df = read_parquet(retention)?;
    let task = df.column("task")?.str()?.clone();
    let press = df.column("press")?.str()?.clone();
    let metric = df.column("metric")?.str()?.clone();
    let ratio = df.column("ratio")?.f64()?.clone();
    let ret = df.column("retention")?.f64()?.clone();
    // task -> press -> points
    let mut by: BTreeMap<String, BTreeMap<String, Vec<(f64, f64)>>> = BTreeMap::new();
    for i in 0..df.height() {
        let (t, m) = (task.get(i).unwrap_or(""), metric.get(i).unwrap_or(""));
        if m != "ppl" && m != "contains" {
            continue;
        }
        let p = press.get(i).unwrap_or("").to_string();
        if p == "no_press" {
            continue;
        }
        let pts = by.entry(t.to_string()).or_default().entry(p).or_default();
        pts.push((
            ratio.get(i).unwrap_or(f64::NAN),
            ret.get(i).unwrap_or(f64::NAN),
        ));
    }
    let mut written = Vec::new();
    for (t, presses) in by {
        let lines: Vec<Line> = presses
            .into_iter()
            .map(|(p, mut pts)| {
                // Every press starts at ratio 0 with retention 1 (no eviction).
                if !pts.iter().any(|x| x.0 == 0.0) {
                    pts.push((0.0, 1.0));
                }
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                Line::new(p, pts)
            })
            .collect();
        let fig = Figure::new(
            format!("{t}: retention vs compression ratio"),
            "compression ratio (fraction of KV entries evicted)",
            "retention (score / no_press score)",
        );
        let name = format!("retention_{}.svg", stem(&t));
        line_chart(&fig, &lines, &out.join(&name))?;
        written.push(name);
    }
    Ok(written)
}
