//! RAG KV fusion results relative to vanilla: from fusion_eval's long
//! `scores.parquet`, one row per (task, method, press, rate) with the mean
//! scores and TTFT parts, the F1 change in points and the TTFT speedup over
//! vanilla of the same task. Task `all` pools every sample.

use crate::error::{other, Result};
use crate::table::read_parquet;
use polars::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// The pooled task's name.
pub const ALL: &str = "all";

/// Mean columns of the summary, in order (each a metric of scores.parquet).
pub const MEANS: &[&str] = &[
    "f1",
    "exact_match",
    "rouge_l",
    "ttft_ms",
    "load_ms",
    "select_ms",
    "recompute_ms",
    "press_ms",
    "first_token_ms",
    "tpot_ms",
    "recomputed_frac",
    "reuse_hit_rate",
    "corrupt_kv_files",
];

/// One cell of the summary: where it sits and its metric means.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub task: String,
    pub method: String,
    pub press: String,
    pub rate: f64,
    pub n_samples: usize,
    /// Indexed like [`MEANS`]; NaN where the metric is absent.
    pub means: Vec<f64>,
    /// (F1 − vanilla's F1) × 100, vanilla of the same task and press; NaN
    /// without one.
    pub f1_delta_points: f64,
    /// vanilla's mean TTFT / this mean TTFT; NaN without a vanilla cell.
    pub ttft_speedup: f64,
}

impl Cell {
    pub fn mean(&self, metric: &str) -> f64 {
        MEANS
            .iter()
            .position(|m| *m == metric)
            .map_or(f64::NAN, |i| self.means[i])
    }

    /// `method` or `method@rate` for rate-driven cells, `+press` if any.
    pub fn label(&self) -> String {
        let mut s = self.method.clone();
        if self.rate > 0.0 && self.rate < 1.0 {
            s.push_str(&format!("@{}", self.rate));
        }
        if self.press != "no_press" {
            s.push_str(&format!("+{}", self.press));
        }
        s
    }
}

type Key = (String, String, String, u64);

/// The summary cells, by task (`all` first), then method order of first
/// appearance, then rate.
pub fn fusion_cells(scores: &DataFrame) -> Result<Vec<Cell>> {
    let col = |n: &str| -> Result<StringChunked> { Ok(scores.column(n)?.str()?.clone()) };
    let (task, sample, method, press, metric) = (
        col("task")?,
        col("sample")?,
        col("method")?,
        col("press")?,
        col("metric")?,
    );
    let ratio = scores.column("ratio")?.f64()?.clone();
    let value = scores.column("value")?.f64()?.clone();
    let mut order: Vec<String> = vec![];
    // key -> metric -> values; key -> samples
    let mut vals: BTreeMap<Key, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    let mut samples: BTreeMap<Key, std::collections::BTreeSet<String>> = BTreeMap::new();
    for i in 0..scores.height() {
        let m = method.get(i).unwrap_or("").to_string();
        if !order.contains(&m) {
            order.push(m.clone());
        }
        let r = ratio.get(i).unwrap_or(f64::NAN);
        if r.is_nan() || r < 0.0 {
            return Err(other(format!("scores.parquet: row {i}: ratio {r}")));
        }
        let p = press.get(i).unwrap_or("no_press").to_string();
        let t = task.get(i).unwrap_or("").to_string();
        let (s, mt) = (sample.get(i).unwrap_or(""), metric.get(i).unwrap_or(""));
        let v = value.get(i).unwrap_or(f64::NAN);
        for t in [t, ALL.to_string()] {
            let key = (t.clone(), m.clone(), p.clone(), r.to_bits());
            let per = vals.entry(key.clone()).or_default();
            per.entry(mt.to_string()).or_default().push(v);
            samples.entry(key).or_default().insert(format!("{t}/{s}"));
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let mut cells: Vec<Cell> = vals
        .iter()
        .map(|((t, m, p, r), per)| Cell {
            task: t.clone(),
            method: m.clone(),
            press: p.clone(),
            rate: f64::from_bits(*r),
            n_samples: samples[&(t.clone(), m.clone(), p.clone(), *r)].len(),
            means: MEANS
                .iter()
                .map(|k| per.get(*k).map_or(f64::NAN, |v| mean(v)))
                .collect(),
            f1_delta_points: f64::NAN,
            ttft_speedup: f64::NAN,
        })
        .collect();
    // Against vanilla under the same press (all of a run's cells share one).
    let vanilla: BTreeMap<(String, String), (f64, f64)> = cells
        .iter()
        .filter(|c| c.method == "vanilla")
        .map(|c| {
            (
                (c.task.clone(), c.press.clone()),
                (c.mean("f1"), c.mean("ttft_ms")),
            )
        })
        .collect();
    for c in &mut cells {
        if let Some(&(f1, ttft)) = vanilla.get(&(c.task.clone(), c.press.clone())) {
            c.f1_delta_points = (c.mean("f1") - f1) * 100.0;
            c.ttft_speedup = ttft / c.mean("ttft_ms");
        }
    }
    let rank = |m: &str| order.iter().position(|o| o == m).unwrap_or(usize::MAX);
    cells.sort_by(|a, b| {
        (a.task != ALL, &a.task, rank(&a.method), &a.press)
            .cmp(&(b.task != ALL, &b.task, rank(&b.method), &b.press))
            .then(a.rate.total_cmp(&b.rate))
    });
    Ok(cells)
}

/// The cells as a wide table: task, method, press, rate, n_samples, the
/// means, f1_delta_points, ttft_speedup.
pub fn cells_frame(cells: &[Cell]) -> Result<DataFrame> {
    let strs =
        |f: fn(&Cell) -> &String| -> Vec<String> { cells.iter().map(|c| f(c).clone()).collect() };
    let mut cols = vec![
        Column::new("task".into(), strs(|c| &c.task)),
        Column::new("method".into(), strs(|c| &c.method)),
        Column::new("press".into(), strs(|c| &c.press)),
        Column::new(
            "rate".into(),
            cells.iter().map(|c| c.rate).collect::<Vec<_>>(),
        ),
        Column::new(
            "n_samples".into(),
            cells.iter().map(|c| c.n_samples as i64).collect::<Vec<_>>(),
        ),
    ];
    for (i, m) in MEANS.iter().enumerate() {
        let v: Vec<f64> = cells.iter().map(|c| c.means[i]).collect();
        cols.push(Column::new((*m).into(), v));
    }
    cols.push(Column::new(
        "f1_delta_points".into(),
        cells.iter().map(|c| c.f1_delta_points).collect::<Vec<_>>(),
    ));
    cols.push(Column::new(
        "ttft_speedup".into(),
        cells.iter().map(|c| c.ttft_speedup).collect::<Vec<_>>(),
    ));
    Ok(DataFrame::new_infer_height(cols)?)
}

/// The cells as a Markdown table (what BENCHMARKS.md quotes).
pub fn cells_markdown(cells: &[Cell]) -> String {
    let mut s = String::from(
        "| task | method | rate | n | F1 | ΔF1 (points) | TTFT ms | speedup | load | select | recompute | press | first token | recomputed |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for c in cells {
        let ms = |m: &str| format!("{:.1}", c.mean(m));
        s.push_str(&format!(
            "| {} | {} | {} | {} | {:.3} | {:+.1} | {} | {:.2}× | {} | {} | {} | {} | {} | {:.3} |\n",
            c.task,
            if c.press == "no_press" { c.method.clone() } else { format!("{}+{}", c.method, c.press) },
            c.rate,
            c.n_samples,
            c.mean("f1"),
            c.f1_delta_points,
            ms("ttft_ms"),
            c.ttft_speedup,
            ms("load_ms"),
            ms("select_ms"),
            ms("recompute_ms"),
            ms("press_ms"),
            ms("first_token_ms"),
            c.mean("recomputed_frac"),
        ));
    }
    s
}

/// Reads `scores.parquet`; the summary cells.
pub fn fusion_summary(scores: &Path) -> Result<Vec<Cell>> {
    fusion_cells(&read_parquet(scores)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// task, sample, method, ratio, metric, value
    type Row<'a> = (&'a str, &'a str, &'a str, f64, &'a str, f64);

    fn scores(rows: &[Row]) -> DataFrame {
        let c = |f: fn(&Row) -> String| -> Vec<String> { rows.iter().map(f).collect() };
        DataFrame::new_infer_height(vec![
            Column::new("task".into(), c(|r| r.0.into())),
            Column::new("sample".into(), c(|r| r.1.into())),
            Column::new("method".into(), c(|r| r.2.into())),
            Column::new("press".into(), vec!["no_press".to_string(); rows.len()]),
            Column::new("ratio".into(), rows.iter().map(|r| r.3).collect::<Vec<_>>()),
            Column::new("metric".into(), c(|r| r.4.into())),
            Column::new("value".into(), rows.iter().map(|r| r.5).collect::<Vec<_>>()),
        ])
        .unwrap()
    }

    #[test]
    fn relative_to_vanilla_per_task_and_pooled() {
        let df = scores(&[
            ("qa", "s1", "vanilla", 1.0, "f1", 1.0),
            ("qa", "s1", "vanilla", 1.0, "ttft_ms", 300.0),
            ("qa", "s2", "vanilla", 1.0, "f1", 0.5),
            ("qa", "s2", "vanilla", 1.0, "ttft_ms", 100.0),
            ("qa", "s1", "blend", 0.15, "f1", 0.5),
            ("qa", "s1", "blend", 0.15, "ttft_ms", 50.0),
            ("qa", "s2", "blend", 0.15, "f1", 0.5),
            ("qa", "s2", "blend", 0.15, "ttft_ms", 50.0),
            ("needle", "n1", "vanilla", 1.0, "f1", 0.0),
            ("needle", "n1", "vanilla", 1.0, "ttft_ms", 100.0),
            ("needle", "n1", "blend", 0.15, "f1", 1.0),
            ("needle", "n1", "blend", 0.15, "ttft_ms", 25.0),
        ]);
        let cells = fusion_cells(&df).unwrap();
        let get = |t: &str, m: &str| cells.iter().find(|c| c.task == t && c.method == m).unwrap();
        assert_eq!(cells[0].task, ALL);
        let b = get("qa", "blend");
        assert_eq!(b.n_samples, 2);
        assert_eq!(b.mean("f1"), 0.5);
        assert_eq!(b.f1_delta_points, -25.0);
        assert_eq!(b.ttft_speedup, 4.0);
        assert_eq!(b.label(), "blend@0.15");
        assert_eq!(get("qa", "vanilla").ttft_speedup, 1.0);
        assert_eq!(get("qa", "vanilla").label(), "vanilla");
        assert_eq!(get("needle", "blend").f1_delta_points, 100.0);
        // pooled: vanilla f1 (1 + 0.5 + 0) / 3, ttft 500 / 3; blend 2/3 and 125/3
        let a = get(ALL, "blend");
        assert_eq!(a.n_samples, 3);
        assert!((a.ttft_speedup - 4.0).abs() < 1e-12);
        assert!((a.f1_delta_points - 100.0 / 6.0).abs() < 1e-9);
        assert!(a.mean("load_ms").is_nan());
        let md = cells_markdown(&cells);
        assert_eq!(md.lines().count(), 2 + cells.len());
        assert!(
            md.contains("| qa | blend | 0.15 | 2 | 0.500 | -25.0 | 50.0 | 4.00× |"),
            "{md}"
        );
        let df = cells_frame(&cells).unwrap();
        assert_eq!(df.height(), cells.len());
        assert_eq!(df.width(), 5 + MEANS.len() + 2);
    }
}
