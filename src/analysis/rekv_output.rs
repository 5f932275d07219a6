//! Writing a [`RekvAnalysis`]: summary.json for people and scripts, and
//! Parquet tables for duckdb — summary.parquet in long tidy form plus one
//! file per breakdown.

use super::rekv::{load_rejections, rekv_summary, RekvAnalysis};
use super::rekv_figures::{rekv_figures, FigureOptions};
use super::rekv_verdict::Thresholds;
use crate::error::{IoContext, Result};
use crate::table::write_parquet;
use polars::prelude::*;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// The verdict columns every breakdown carries (text, not numbers).
const VERDICTS: [&str; 3] = ["verdict", "verdict_k", "verdict_v"];

/// How the two counts are defined, written into summary.json.
const COUNTING: &str = "n_rows counts (layer, head) comparison rows; n_rejections counts \
distinct rejections (sample, round, window_pos, mode, plus gamma in a sweep); means are over rows";

/// The per-mode table in long form `(mode, metric, value, text)`: one row per
/// numeric statistic (text null), one per verdict (value null, text GO /
/// CAUTION / NO-GO / NO-DATA), and the two thresholds as `threshold_go` and
/// `threshold_caution`.
pub fn summary_long(a: &RekvAnalysis) -> Result<DataFrame> {
    let m = &a.by_mode;
    let modes = m.column("mode")?.str()?.clone();
    let numeric: Vec<(String, Column)> = m
        .columns()
        .iter()
        .filter(|c| c.name().as_str() != "mode" && c.dtype().is_primitive_numeric())
        .map(|c| Ok((c.name().to_string(), c.cast(&DataType::Float64)?)))
        .collect::<Result<_>>()?;
    let (mut mode, mut metric, mut value, mut text) = (vec![], vec![], vec![], vec![]);
    let mut push = |md: &str, name: &str, v: Option<f64>, t: Option<String>| {
        mode.push(md.to_string());
        metric.push(name.to_string());
        value.push(v);
        text.push(t);
    };
    for row in 0..m.height() {
        let md = modes.get(row).unwrap_or("");
        for (name, col) in &numeric {
            push(md, name, col.f64()?.get(row), None);
        }
        for name in VERDICTS {
            let v = m.column(name)?.str()?.get(row).map(String::from);
            push(md, name, None, v);
        }
        push(md, "threshold_go", Some(a.thresholds.go), None);
        push(md, "threshold_caution", Some(a.thresholds.caution), None);
    }
    Ok(df!(
        "mode" => mode,
        "metric" => metric,
        "value" => value,
        "text" => text,
    )?)
}

/// summary.json: thresholds and their rule, how counts are defined, every
/// per-mode statistic and verdict keyed by mode, and the gamma table as a
/// list of rows when there is one.
pub fn summary_json(a: &RekvAnalysis) -> Result<Value> {
    let m = &a.by_mode;
    let modes = m.column("mode")?.str()?.clone();
    let mut per_mode = Map::new();
    for row in 0..m.height() {
        let mut obj = row_json(m, row)?;
        obj.remove("mode");
        per_mode.insert(modes.get(row).unwrap_or("").to_string(), Value::Object(obj));
    }
    let mut out = json!({
        "thresholds": {
            "go": a.thresholds.go,
            "caution": a.thresholds.caution,
            "rule": a.thresholds.rule(),
        },
        "counting": COUNTING,
        "modes": per_mode,
    });
    if let Some(g) = &a.by_gamma {
        let rows = (0..g.height())
            .map(|r| row_json(g, r).map(Value::Object))
            .collect::<Result<Vec<_>>>()?;
        out["by_gamma"] = Value::Array(rows);
    }
    Ok(out)
}

/// One row of `df` as a JSON object; nulls and non-finite floats are null.
fn row_json(df: &DataFrame, row: usize) -> Result<Map<String, Value>> {
    let mut obj = Map::new();
    for c in df.columns() {
        let v = match c.get(row)? {
            AnyValue::String(s) => Value::from(s),
            AnyValue::StringOwned(s) => Value::from(s.as_str()),
            AnyValue::Float64(x) if x.is_finite() => Value::from(x),
            AnyValue::Float32(x) if x.is_finite() => Value::from(x as f64),
            AnyValue::Int64(x) => Value::from(x),
            AnyValue::Int32(x) => Value::from(x),
            AnyValue::UInt32(x) => Value::from(x),
            AnyValue::UInt64(x) => Value::from(x),
            _ => Value::Null,
        };
        obj.insert(c.name().to_string(), v);
    }
    Ok(obj)
}

/// Write summary.json, summary.parquet, by_layer.parquet,
/// by_position.parquet, by_confidence.parquet, by_rank.parquet,
/// distribution.parquet and, for a gamma sweep, by_gamma.parquet into
/// `out_dir` (which must exist); returns the paths written.
pub fn write_rekv_outputs(a: &RekvAnalysis, out_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let json_path = out_dir.join("summary.json");
    let text = serde_json::to_string_pretty(&summary_json(a)?)
        .map_err(|e| crate::error::other(format!("summary.json: {e}")))?;
    std::fs::write(&json_path, text + "\n").ctx(format!("write {}", json_path.display()))?;
    written.push(json_path);

    let mut tables = vec![
        ("summary.parquet", summary_long(a)?),
        ("by_layer.parquet", a.by_layer.clone()),
        ("by_position.parquet", a.by_position.clone()),
        ("by_confidence.parquet", a.by_confidence.clone()),
        ("by_rank.parquet", a.by_rank.clone()),
        ("distribution.parquet", a.distribution.clone()),
    ];
    if let Some(g) = &a.by_gamma {
        tables.push(("by_gamma.parquet", g.clone()));
    }
    for (name, mut df) in tables {
        let path = out_dir.join(name);
        write_parquet(&mut df, &path)?;
        written.push(path);
    }
    Ok(written)
}

/// All a ReKV stage does: read and check `rejections` (a Parquet file),
/// aggregate with `thresholds`, write the tables and JSON, then the figures,
/// all into `out_dir`; returns every path written.
pub fn rekv_run(
    rejections: &Path,
    thresholds: Thresholds,
    figures: &FigureOptions,
    out_dir: &Path,
) -> Result<Vec<PathBuf>> {
    let a = rekv_summary(load_rejections(rejections)?, thresholds)?;
    let mut files = write_rekv_outputs(&a, out_dir)?;
    files.extend(rekv_figures(&a, figures, out_dir)?);
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::rekv_testdata::two_modes;
    use crate::analysis::testdata::write_fixture;
    use crate::plot::testing::{cleanup, tempdir};
    use crate::table::read_parquet;

    fn analysis(gamma: bool) -> RekvAnalysis {
        let mut lf = two_modes().lazy();
        if gamma {
            lf = lf.with_column(lit(4i64).alias("gamma"));
        }
        rekv_summary(lf, Thresholds::seed()).unwrap()
    }

    fn names(paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn long_summary_is_tidy() {
        let l = summary_long(&analysis(false)).unwrap();
        let names: Vec<&str> = l.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ["mode", "metric", "value", "text"]);
        let pick = |mode: &str, metric: &str| {
            l.clone()
                .lazy()
                .filter(col("mode").eq(lit(mode)).and(col("metric").eq(lit(metric))))
                .collect()
                .unwrap()
        };
        let r = pick("same_model", "mean_cos");
        assert_eq!(r.height(), 1);
        let v = r.column("value").unwrap().f64().unwrap().get(0).unwrap();
        assert!((v - 0.9).abs() < 1e-12);
        let r = pick("cross_model", "verdict");
        assert_eq!(
            r.column("text").unwrap().str().unwrap().get(0),
            Some("NO-GO")
        );
        assert_eq!(r.column("value").unwrap().f64().unwrap().get(0), None);
        let r = pick("cross_model", "n_rejections");
        assert_eq!(r.column("value").unwrap().f64().unwrap().get(0), Some(3.0));
        let r = pick("same_model", "threshold_go");
        assert_eq!(r.column("value").unwrap().f64().unwrap().get(0), Some(0.7));
        // every numeric per-mode column, three verdicts, two thresholds, per mode
        let a = analysis(false);
        let numeric = a.by_mode.width() - 1 - VERDICTS.len();
        assert_eq!(l.height(), 2 * (numeric + VERDICTS.len() + 2));
    }

    #[test]
    fn writes_every_table_and_json() {
        let dir = tempdir("rekv-out");
        let files = write_rekv_outputs(&analysis(false), &dir).unwrap();
        assert_eq!(
            names(&files),
            [
                "summary.json",
                "summary.parquet",
                "by_layer.parquet",
                "by_position.parquet",
                "by_confidence.parquet",
                "by_rank.parquet",
                "distribution.parquet"
            ]
        );
        let j: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(j["thresholds"]["go"], json!(0.7));
        assert_eq!(j["thresholds"]["caution"], json!(0.5));
        assert_eq!(j["modes"]["same_model"]["verdict"], json!("GO"));
        assert_eq!(j["modes"]["cross_model"]["verdict_v"], json!("NO-GO"));
        assert_eq!(j["modes"]["cross_model"]["n_rejections"], json!(3));
        assert_eq!(j["modes"]["cross_model"]["n_rows"], json!(12));
        let m = j["modes"]["cross_model"]["mean_cos_k"].as_f64().unwrap();
        assert!((m - 0.3).abs() < 1e-12);
        assert!(j.get("by_gamma").is_none());

        let layers = read_parquet(&dir.join("by_layer.parquet")).unwrap();
        assert_eq!(layers.height(), 4);
        assert!(layers.column("verdict").is_ok());
        let rank = read_parquet(&dir.join("by_rank.parquet")).unwrap();
        assert!(rank.column("rank_label").is_ok());
        cleanup(&dir);
    }

    #[test]
    fn a_gamma_sweep_adds_by_gamma() {
        let dir = tempdir("rekv-out-gamma");
        let files = write_rekv_outputs(&analysis(true), &dir).unwrap();
        assert_eq!(names(&files).last().unwrap(), "by_gamma.parquet");
        let g = read_parquet(&dir.join("by_gamma.parquet")).unwrap();
        assert_eq!(g.height(), 2);
        let j: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(j["by_gamma"][1]["mode"], json!("same_model"));
        assert_eq!(j["by_gamma"][1]["gamma"], json!(4));
        assert_eq!(j["by_gamma"][1]["verdict"], json!("GO"));
        cleanup(&dir);
    }

    #[test]
    fn one_call_from_file_to_figures() {
        let dir = tempdir("rekv-run");
        let input = write_fixture(&dir, "rejections.parquet", two_modes());
        let out = dir.join("out");
        std::fs::create_dir(&out).unwrap();
        let png = FigureOptions {
            formats: vec![crate::plot::Format::Png],
            ..FigureOptions::default()
        };
        let files = rekv_run(&input, Thresholds::seed(), &png, &out).unwrap();
        assert_eq!(files.len(), 7 + 6);
        assert!(files.iter().all(|f| f.is_file() && f.starts_with(&out)));
        let missing = dir.join("nope.parquet");
        assert!(rekv_run(&missing, Thresholds::seed(), &png, &out).is_err());
        cleanup(&dir);
    }
}
