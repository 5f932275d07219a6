//! The press matrix's tables from its cells: `scores.parquet` (long form,
//! as the perplexity stage's), `retention.parquet` (score(press, ratio) /
//! score(no_press) per task and metric; for perplexity ppl(no_press) /
//! ppl(press), so 1 is full retention either way) and `cells.parquet`
//! (bytes held and the prediction per cell).

use crate::error::Result;
use crate::table::write_parquet;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// What one item holds (`cell.json`).
#[derive(Serialize, Deserialize)]
pub struct Cell {
    /// (metric, value): `nll_sum`, `tokens` (perplexity) or `contains`,
    /// `f1`, `rouge_l` (QA).
    pub metrics: Vec<(String, f64)>,
    pub bytes_before: usize,
    pub bytes_after: usize,
    pub prediction: String,
}

/// A planned cell's labels.
pub struct Planned {
    pub task: String,
    pub sample: String,
    pub press: String,
    pub ratio: f64,
}

#[derive(Default)]
struct Long {
    task: Vec<String>,
    sample: Vec<String>,
    method: Vec<String>,
    press: Vec<String>,
    ratio: Vec<f64>,
    metric: Vec<String>,
    value: Vec<f64>,
}

impl Long {
    fn push(&mut self, p: &Planned, sample: &str, method: &str, metric: &str, v: f64) {
        self.task.push(p.task.clone());
        self.sample.push(sample.to_string());
        self.method.push(method.to_string());
        self.press.push(p.press.clone());
        self.ratio.push(p.ratio);
        self.metric.push(metric.to_string());
        self.value.push(v);
    }
}

type Group = (String, String, u64);

/// Per (task, press, ratio): summed metrics, bytes, count.
#[derive(Default)]
struct Agg {
    sums: BTreeMap<String, f64>,
    order: Vec<String>,
    before: f64,
    after: f64,
    n: usize,
}

pub fn write_all(
    out: &Path,
    planned: &[Planned],
    cells: &[Cell],
    qa_method: &str,
    ppl_method: &str,
) -> Result<()> {
    let mut long = Long::default();
    let mut groups: BTreeMap<Group, (usize, Agg)> = BTreeMap::new();
    for (i, (p, c)) in planned.iter().zip(cells).enumerate() {
        let is_ppl = p.task.starts_with("perplexity:");
        let method = if is_ppl { ppl_method } else { qa_method };
        let m: BTreeMap<&str, f64> = c.metrics.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        if is_ppl {
            long.push(p, &p.sample, method, "nll", m["nll_sum"] / m["tokens"]);
        } else {
            for (k, v) in &c.metrics {
                long.push(p, &p.sample, method, k, *v);
            }
        }
        let g = groups
            .entry((p.task.clone(), p.press.clone(), p.ratio.to_bits()))
            .or_insert((i, Agg::default()));
        for (k, v) in &c.metrics {
            if !g.1.sums.contains_key(k) {
                g.1.order.push(k.clone());
            }
            *g.1.sums.entry(k.clone()).or_default() += v;
        }
        g.1.before += c.bytes_before as f64;
        g.1.after += c.bytes_after as f64;
        g.1.n += 1;
    }
    // Totals (sample "all") per group, in plan order.
    let mut ordered: Vec<(&Group, &(usize, Agg))> = groups.iter().collect();
    ordered.sort_by_key(|(_, (i, _))| *i);
    let mut totals: BTreeMap<Group, Vec<(String, f64)>> = BTreeMap::new();
    for (g, (i, a)) in &ordered {
        let p = &planned[*i];
        let is_ppl = p.task.starts_with("perplexity:");
        let method = if is_ppl { ppl_method } else { qa_method };
        let vals: Vec<(String, f64)> = if is_ppl {
            let nll = a.sums["nll_sum"] / a.sums["tokens"];
            vec![
                ("ppl".into(), nll.exp()),
                ("nll".into(), nll),
                ("tokens".into(), a.sums["tokens"]),
            ]
        } else {
            a.order
                .iter()
                .map(|k| (k.clone(), a.sums[k] / a.n as f64))
                .collect()
        };
        for (k, v) in &vals {
            long.push(p, "all", method, k, *v);
        }
        long.push(p, "all", method, "bytes_after", a.after / a.n as f64);
        totals.insert((*g).clone(), vals);
    }
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("task".into(), long.task),
        Column::new("sample".into(), long.sample),
        Column::new("method".into(), long.method),
        Column::new("press".into(), long.press),
        Column::new("ratio".into(), long.ratio),
        Column::new("metric".into(), long.metric),
        Column::new("value".into(), long.value),
    ])?;
    write_parquet(&mut df, &out.join("scores.parquet"))?;
    write_retention(out, &ordered, planned, &totals)?;
    write_cells(out, planned, cells)
}

fn write_retention(
    out: &Path,
    ordered: &[(&Group, &(usize, Agg))],
    planned: &[Planned],
    totals: &BTreeMap<Group, Vec<(String, f64)>>,
) -> Result<()> {
    let (mut task, mut press, mut ratio, mut metric) = (vec![], vec![], vec![], vec![]);
    let (mut value, mut base, mut ret, mut before, mut after) =
        (vec![], vec![], vec![], vec![], vec![]);
    for (g, (i, a)) in ordered {
        let p = &planned[*i];
        let is_ppl = p.task.starts_with("perplexity:");
        let b = &totals[&(p.task.clone(), "no_press".to_string(), 0f64.to_bits())];
        for (k, v) in &totals[*g] {
            if is_ppl && k != "ppl" {
                continue;
            }
            let bv = b
                .iter()
                .find(|(bk, _)| bk == k)
                .map(|x| x.1)
                .unwrap_or(f64::NAN);
            task.push(p.task.clone());
            press.push(p.press.clone());
            ratio.push(p.ratio);
            metric.push(k.clone());
            value.push(*v);
            base.push(bv);
            ret.push(if is_ppl { bv / v } else { v / bv });
            before.push(a.before / a.n as f64);
            after.push(a.after / a.n as f64);
        }
    }
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("task".into(), task),
        Column::new("press".into(), press),
        Column::new("ratio".into(), ratio),
        Column::new("metric".into(), metric),
        Column::new("value".into(), value),
        Column::new("no_press".into(), base),
        Column::new("retention".into(), ret),
        Column::new("bytes_before".into(), before),
        Column::new("bytes_after".into(), after),
    ])?;
    write_parquet(&mut df, &out.join("retention.parquet"))
}

fn write_cells(out: &Path, planned: &[Planned], cells: &[Cell]) -> Result<()> {
    let s = |f: fn(&Planned) -> &String| planned.iter().map(f).cloned().collect::<Vec<_>>();
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("task".into(), s(|p| &p.task)),
        Column::new("sample".into(), s(|p| &p.sample)),
        Column::new("press".into(), s(|p| &p.press)),
        Column::new(
            "ratio".into(),
            planned.iter().map(|p| p.ratio).collect::<Vec<_>>(),
        ),
        Column::new(
            "bytes_before".into(),
            cells
                .iter()
                .map(|c| c.bytes_before as i64)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "bytes_after".into(),
            cells
                .iter()
                .map(|c| c.bytes_after as i64)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "prediction".into(),
            cells
                .iter()
                .map(|c| c.prediction.clone())
                .collect::<Vec<_>>(),
        ),
    ])?;
    write_parquet(&mut df, &out.join("cells.parquet"))
}
