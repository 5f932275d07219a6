//! Seed 004's third table: speculative decoding with a KV press on the
//! target, the draft or both — TPOT, tokens/s, speedup over the first role
//! (speculation without a press), acceptance, cache bytes held at the end,
//! and perplexity.
//!
//! The perplexity is the target's on a fixed text under the same press and
//! ratio (press_eval's `retention.parquet`, task `perplexity:*`, metric
//! `ppl`): what the compressed cache does to the target's predictions, which
//! kvlab can measure exactly, unlike the perplexity of generated text (which
//! would be scored by the same compressed model). A press on the draft alone
//! leaves the target exact, so that row takes the uncompressed perplexity.

use crate::error::Result;
use polars::prelude::*;
use std::collections::HashMap;
use std::path::Path;

/// `(press, ratio bits) -> ppl` from press_eval's retention table (the
/// mean over perplexity texts).
fn perplexities(path: &Path) -> Result<HashMap<(String, u64), f64>> {
    let df = crate::table::read_parquet(path)?;
    let (task, metric) = (df.column("task")?.str()?, df.column("metric")?.str()?);
    let (press, ratio) = (df.column("press")?.str()?, df.column("ratio")?.f64()?);
    let value = df.column("value")?.f64()?;
    let mut sums: HashMap<(String, u64), (f64, usize)> = HashMap::new();
    for i in 0..df.height() {
        let is_ppl = task.get(i).is_some_and(|t| t.starts_with("perplexity:"))
            && metric.get(i) == Some("ppl");
        if let (true, Some(p), Some(r), Some(v)) =
            (is_ppl, press.get(i), ratio.get(i), value.get(i))
        {
            let e = sums.entry((p.to_string(), r.to_bits())).or_default();
            e.0 += v;
            e.1 += 1;
        }
    }
    Ok(sums
        .into_iter()
        .map(|(k, (s, n))| (k, s / n as f64))
        .collect())
}

/// `outputs.parquet` of each generate stage by role (the reference first),
/// and press_eval's `retention.parquet` when there is one.
pub fn press_table(inputs: &[(String, &Path)], ppl: Option<&Path>) -> Result<DataFrame> {
    let mut all: Option<DataFrame> = None;
    for (role, path) in inputs {
        let df = super::scan(path)?
            .group_by([
                col("method"),
                col("press"),
                col("press_ratio"),
                col("press_on"),
                col("press_every"),
            ])
            .agg([
                len().cast(DataType::Int64).alias("n_samples"),
                col("tpot_ms").mean().alias("tpot_ms"),
                col("tokens_per_s").mean().alias("tokens_per_s"),
                col("acceptance_rate").mean().alias("acceptance_rate"),
                col("mean_accepted_len").mean().alias("mean_accepted_len"),
                col("kv_bytes")
                    .cast(DataType::Float64)
                    .mean()
                    .alias("kv_bytes"),
                col("draft_kv_bytes")
                    .cast(DataType::Float64)
                    .mean()
                    .alias("draft_kv_bytes"),
            ])
            .with_column(lit(role.clone()).alias("role"))
            .sort(["method"], Default::default())
            .collect()?;
        match &mut all {
            None => all = Some(df),
            Some(a) => {
                a.vstack_mut(&df)?;
            }
        }
    }
    let all = all.ok_or_else(|| crate::error::other("press table: no inputs"))?;
    let base = all
        .column("tokens_per_s")?
        .f64()?
        .get(0)
        .unwrap_or(f64::NAN);
    let ppls = ppl.map(perplexities).transpose()?;
    let (press, ratio, on) = (
        all.column("press")?.str()?.clone(),
        all.column("press_ratio")?.f64()?.clone(),
        all.column("press_on")?.str()?.clone(),
    );
    let ppl_col: Vec<Option<f64>> = (0..all.height())
        .map(|i| {
            let m = ppls.as_ref()?;
            let (p, r) = (press.get(i)?, ratio.get(i)?);
            // The target's cache is compressed only with press_on target|both.
            let key = if p == "no_press" || r == 0.0 || on.get(i) == Some("draft") {
                ("no_press".to_string(), 0f64.to_bits())
            } else {
                (p.to_string(), r.to_bits())
            };
            m.get(&key).copied()
        })
        .collect();
    let mut all = all;
    all.with_column(Column::new("ppl".into(), ppl_col))?;
    let out = all
        .lazy()
        .with_column((col("tokens_per_s") / lit(base)).alias("speedup"))
        .select([
            col("role"),
            col("method"),
            col("press"),
            col("press_ratio"),
            col("press_on"),
            col("press_every"),
            col("n_samples"),
            col("tpot_ms"),
            col("tokens_per_s"),
            col("speedup"),
            col("acceptance_rate"),
            col("mean_accepted_len"),
            col("kv_bytes"),
            col("draft_kv_bytes"),
            col("ppl"),
        ])
        .collect()?;
    Ok(out)
}
