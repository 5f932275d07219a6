//! ReKV: how close is the KV of a rejected draft token to the ground-truth
//! KV at that position? Aggregates the `rejections` event table (one row per
//! rejected token × compared (layer, head)) per mode, per target layer, per
//! window position, per draft-confidence and target-rank bucket, per gamma,
//! and the cosine histogram fig1 draws.
//!
//! Two counts appear in every table: `n_rows` counts (layer, head) rows, and
//! `n_rejections` counts distinct rejections, i.e. distinct (sample, round,
//! window_pos, mode) — plus `gamma` when the table is a gamma sweep, since
//! each run numbers its rounds from 0. Means are over rows, so every
//! compared (layer, head) weighs the same. Non-finite cosines and distances
//! (a zero vector) are left out of the means and counted in
//! `n_nonfinite_cos` of the per-mode table; the verdict of a group without
//! any finite cosine is NO-DATA.

use super::columns::{check, Kind};
use super::rekv_verdict::Thresholds;
use crate::error::{other, Result};
use polars::prelude::*;
use std::path::Path;

/// Columns of rejections.parquet (the DESIGN's contract).
pub const REJECTIONS: &[(&str, Kind)] = &[
    ("sample", Kind::Str),
    ("round", Kind::Int),
    ("window_pos", Kind::Int),
    ("abs_pos", Kind::Int),
    ("draft_token", Kind::Int),
    ("target_token", Kind::Int),
    ("draft_conf", Kind::Float),
    ("target_rank", Kind::Int),
    ("layer_draft", Kind::Int),
    ("layer_target", Kind::Int),
    ("head", Kind::Int),
    ("cos_k", Kind::Float),
    ("cos_v", Kind::Float),
    ("l2_k", Kind::Float),
    ("l2_v", Kind::Float),
    ("mode", Kind::Str),
];

/// The optional column a combined gamma-sweep table carries.
pub const GAMMA: (&str, Kind) = ("gamma", Kind::Int);

/// What identifies one rejection (with `gamma` added when present).
pub const REJECTION_KEY: [&str; 4] = ["sample", "round", "window_pos", "mode"];

/// Draft-confidence buckets [0, 0.2), [0.2, 0.4), …, [0.8, 1.0]: the last is
/// closed so a confidence of exactly 1 counts. Values outside [0, 1] (or
/// missing) fall in bucket -1, "outside [0, 1]".
pub const CONF_EDGES: [f64; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];

/// Target-rank buckets (inclusive lo, inclusive hi or open-ended, label);
/// negative or missing ranks fall in bucket -1, "invalid". Rank 0 is the
/// target's argmax, which greedy decoding never rejects.
pub const RANK_BUCKETS: [(i64, Option<i64>, &str); 6] = [
    (0, Some(0), "0"),
    (1, Some(1), "1"),
    (2, Some(2), "2"),
    (3, Some(4), "3-4"),
    (5, Some(9), "5-9"),
    (10, None, "10+"),
];

/// Bins of the cosine histogram over [-1, 1] (width 0.02; the last bin is
/// closed, values a rounding error outside [-1, 1] are clamped in).
pub const DIST_BINS: i64 = 100;

/// Everything the ReKV outputs and figures are made of.
#[derive(Clone, Debug)]
pub struct RekvAnalysis {
    pub thresholds: Thresholds,
    /// Per mode: counts, mean/median/p10/p25/p75/p90 of cos_k and cos_v,
    /// mean cos, mean l2, verdicts.
    pub by_mode: DataFrame,
    /// Per (mode, layer_target): counts, means, verdicts.
    pub by_layer: DataFrame,
    /// Per (mode, window_pos): counts, means, verdicts.
    pub by_position: DataFrame,
    /// Per (mode, conf_bucket) with `conf_label`: counts, means, verdicts.
    pub by_confidence: DataFrame,
    /// Per (mode, rank_bucket) with `rank_label`: counts, means, verdicts.
    pub by_rank: DataFrame,
    /// Non-empty cosine-histogram bins: mode, kv ("K"/"V"), bin, lo, hi, n_rows.
    pub distribution: DataFrame,
    /// Per (gamma, mode), only when the table has a `gamma` column.
    pub by_gamma: Option<DataFrame>,
}

/// Scan `path` and check its columns (and `gamma`'s type when present), so
/// a wrong file is reported by file and column name.
pub fn load_rejections(path: &Path) -> Result<LazyFrame> {
    let mut lf = super::scan(path)?;
    check_schema(&mut lf, path)?;
    Ok(lf)
}

fn check_schema(lf: &mut LazyFrame, path: &Path) -> Result<bool> {
    check(lf, path, REJECTIONS)?;
    let has_gamma = lf.collect_schema()?.contains(GAMMA.0);
    if has_gamma {
        check(lf, path, &[GAMMA])?;
    }
    Ok(has_gamma)
}

/// Aggregate a rejections table. Its columns are checked first (errors name
/// "rejections" as the file; use [`load_rejections`] to get the real path).
pub fn rekv_summary(rejections: LazyFrame, thresholds: Thresholds) -> Result<RekvAnalysis> {
    let mut lf = rejections;
    let has_gamma = check_schema(&mut lf, Path::new("rejections"))?;
    let mut rej_key: Vec<&str> = REJECTION_KEY.to_vec();
    if has_gamma {
        rej_key.push(GAMMA.0);
    }
    let lf = lf.with_columns([
        // the when/then literals would otherwise materialise as i32
        conf_bucket().cast(DataType::Int64).alias("conf_bucket"),
        rank_bucket().cast(DataType::Int64).alias("rank_bucket"),
    ]);
    let t = &thresholds;

    let by_mode = grouped(&lf, &["mode"], &rej_key, mode_stats(), t)?;
    let by_layer = grouped(&lf, &["mode", "layer_target"], &rej_key, means(), t)?;
    let by_position = grouped(&lf, &["mode", "window_pos"], &rej_key, means(), t)?;
    let mut by_confidence = grouped(&lf, &["mode", "conf_bucket"], &rej_key, means(), t)?;
    let labels = conf_labels();
    insert_labels(&mut by_confidence, "conf_bucket", "conf_label", &labels)?;
    let mut by_rank = grouped(&lf, &["mode", "rank_bucket"], &rej_key, means(), t)?;
    let labels: Vec<String> = RANK_BUCKETS.iter().map(|b| b.2.to_string()).collect();
    insert_labels(&mut by_rank, "rank_bucket", "rank_label", &labels)?;
    let by_gamma = if has_gamma {
        let stats = means().into_iter().take(3).collect();
        Some(grouped(&lf, &["gamma", "mode"], &rej_key, stats, t)?)
    } else {
        None
    };
    Ok(RekvAnalysis {
        thresholds,
        by_mode,
        by_layer,
        by_position,
        by_confidence,
        by_rank,
        distribution: distribution(&lf)?,
        by_gamma,
    })
}

/// The labels of the confidence buckets, index = bucket.
pub fn conf_labels() -> Vec<String> {
    let n = CONF_EDGES.len() - 1;
    (0..n)
        .map(|i| {
            let close = if i + 1 == n { ']' } else { ')' };
            format!("[{:.1}, {:.1}{close}", CONF_EDGES[i], CONF_EDGES[i + 1])
        })
        .collect()
}

/// The label of bucket `b` of `labels`, or the out-of-range label for -1.
fn bucket_label(labels: &[String], b: i64, outside: &str) -> String {
    usize::try_from(b)
        .ok()
        .and_then(|i| labels.get(i).cloned())
        .unwrap_or_else(|| outside.to_string())
}

/// The column as f64 with non-finite values as null, so means skip them.
fn fin(name: &str) -> Expr {
    let x = col(name).cast(DataType::Float64);
    when(x.clone().is_finite())
        .then(x)
        .otherwise(lit(NULL).cast(DataType::Float64))
}

/// Mean of K and V cosine per row: null unless both are finite.
fn cos_kv() -> Expr {
    (fin("cos_k") + fin("cos_v")) / lit(2.0)
}

/// Index into CONF_EDGES' buckets, -1 when outside [0, 1] or missing.
fn conf_bucket() -> Expr {
    let c = || col("draft_conf").cast(DataType::Float64);
    let n = CONF_EDGES.len() - 1;
    let cond = |i: usize| {
        let lo = c().gt_eq(lit(CONF_EDGES[i]));
        if i + 1 == n {
            lo.and(c().lt_eq(lit(CONF_EDGES[i + 1])))
        } else {
            lo.and(c().lt(lit(CONF_EDGES[i + 1])))
        }
    };
    let mut chain = when(cond(0)).then(lit(0i64)).when(cond(1)).then(lit(1i64));
    for i in 2..n {
        chain = chain.when(cond(i)).then(lit(i as i64));
    }
    chain.otherwise(lit(-1i64))
}

/// Index into RANK_BUCKETS, -1 when negative or missing.
fn rank_bucket() -> Expr {
    let r = || col("target_rank").cast(DataType::Int64);
    let cond = |i: usize| {
        let (lo, hi, _) = RANK_BUCKETS[i];
        let c = r().gt_eq(lit(lo));
        match hi {
            Some(hi) => c.and(r().lt_eq(lit(hi))),
            None => c,
        }
    };
    let mut chain = when(cond(0)).then(lit(0i64)).when(cond(1)).then(lit(1i64));
    for i in 2..RANK_BUCKETS.len() {
        chain = chain.when(cond(i)).then(lit(i as i64));
    }
    chain.otherwise(lit(-1i64))
}

/// The statistics of every breakdown: mean cosines first (by_gamma keeps
/// only those three), then mean distances.
fn means() -> Vec<Expr> {
    vec![
        fin("cos_k").mean().alias("mean_cos_k"),
        fin("cos_v").mean().alias("mean_cos_v"),
        cos_kv().mean().alias("mean_cos"),
        fin("l2_k").mean().alias("mean_l2_k"),
        fin("l2_v").mean().alias("mean_l2_v"),
    ]
}

/// The per-mode statistics: the means plus the cosine quantiles.
fn mode_stats() -> Vec<Expr> {
    let mut out = vec![
        col("sample")
            .n_unique()
            .cast(DataType::Int64)
            .alias("n_samples"),
        (fin("cos_k").is_null().or(fin("cos_v").is_null()))
            .cast(DataType::Int64)
            .sum()
            .alias("n_nonfinite_cos"),
    ];
    out.extend(means());
    for c in ["cos_k", "cos_v"] {
        out.push(fin(c).median().alias(format!("median_{c}")));
        for p in [10u32, 25, 75, 90] {
            let q = fin(c).quantile(lit(p as f64 / 100.0), QuantileMethod::Linear);
            out.push(q.alias(format!("p{p}_{c}")));
        }
    }
    out
}

/// `stats` per `keys`, with n_rows, n_rejections (distinct `rej_key` per
/// key) and the verdicts on mean_cos / mean_cos_k / mean_cos_v; sorted by keys.
fn grouped(
    lf: &LazyFrame,
    keys: &[&str],
    rej_key: &[&str],
    stats: Vec<Expr>,
    t: &Thresholds,
) -> Result<DataFrame> {
    let key_exprs: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
    let mut aggs = vec![len().cast(DataType::Int64).alias("n_rows")];
    aggs.extend(stats);
    let rows = lf.clone().group_by(key_exprs.clone()).agg(aggs);

    // A rejection's bucket, position and mode are the same on all its rows,
    // so distinct (keys ∪ rejection key) rows count each rejection once.
    let mut distinct: Vec<Expr> = key_exprs.clone();
    for k in rej_key {
        if !keys.contains(k) {
            distinct.push(col(*k));
        }
    }
    let rejections = lf
        .clone()
        .select(distinct)
        .unique(None, UniqueKeepStrategy::Any)
        .group_by(key_exprs.clone())
        .agg([len().cast(DataType::Int64).alias("n_rejections")]);

    let mut df = rows
        .join(
            rejections,
            key_exprs.clone(),
            key_exprs,
            // a null key (say a missing layer) is still its own group
            JoinArgs {
                nulls_equal: true,
                ..JoinArgs::new(JoinType::Left)
            },
        )
        .sort(keys.to_vec(), SortMultipleOptions::default())
        .collect()?;
    // n_rejections next to n_rows
    let nrej = df.drop_in_place("n_rejections")?;
    df.insert_column(keys.len() + 1, nrej)?;
    add_verdicts(&mut df, t)?;
    Ok(df)
}

/// Append `verdict` (on mean_cos), `verdict_k` and `verdict_v` columns.
fn add_verdicts(df: &mut DataFrame, t: &Thresholds) -> Result<()> {
    for (src, name) in [
        ("mean_cos", "verdict"),
        ("mean_cos_k", "verdict_k"),
        ("mean_cos_v", "verdict_v"),
    ] {
        let means = df.column(src)?.f64()?.clone();
        let v: Vec<&str> = means.iter().map(|m| t.verdict(m).as_str()).collect();
        df.with_column(Column::new(name.into(), v))?;
    }
    Ok(())
}

/// Put a label column right after the bucket column.
fn insert_labels(df: &mut DataFrame, bucket: &str, name: &str, labels: &[String]) -> Result<()> {
    let outside = if bucket == "conf_bucket" {
        "outside [0, 1]"
    } else {
        "invalid"
    };
    let b = df.column(bucket)?.i64()?.clone();
    let v: Vec<String> = b
        .iter()
        .map(|x| bucket_label(labels, x.unwrap_or(-1), outside))
        .collect();
    let at = df
        .get_column_index(bucket)
        .ok_or_else(|| other(format!("no column {bucket}")))?;
    df.insert_column(at + 1, Column::new(name.into(), v))?;
    Ok(())
}

/// Non-empty bins of the K and V cosine histograms per mode.
fn distribution(lf: &LazyFrame) -> Result<DataFrame> {
    let half = DIST_BINS as f64 / 2.0;
    let parts: Vec<LazyFrame> = [("K", "cos_k"), ("V", "cos_v")]
        .into_iter()
        .map(|(kv, c)| {
            // multiply rather than divide by the width: 1.9 * 50 is 95 exactly
            let b = ((fin(c) + lit(1.0)) * lit(half)).cast(DataType::Int64);
            let b = when(b.clone().lt(lit(0i64)))
                .then(lit(0i64))
                .when(b.clone().gt(lit(DIST_BINS - 1)))
                .then(lit(DIST_BINS - 1))
                .otherwise(b);
            lf.clone()
                .select([col("mode"), b.alias("bin")])
                .filter(col("bin").is_not_null())
                .group_by([col("mode"), col("bin")])
                .agg([len().cast(DataType::Int64).alias("n_rows")])
                .with_columns([
                    lit(kv).alias("kv"),
                    (col("bin").cast(DataType::Float64) / lit(half) - lit(1.0)).alias("lo"),
                    ((col("bin") + lit(1i64)).cast(DataType::Float64) / lit(half) - lit(1.0))
                        .alias("hi"),
                ])
        })
        .collect();
    Ok(concat(parts, UnionArgs::default())?
        .select([
            col("mode"),
            col("kv"),
            col("bin"),
            col("lo"),
            col("hi"),
            col("n_rows"),
        ])
        .sort(["mode", "kv", "bin"], SortMultipleOptions::default())
        .collect()?)
}

#[cfg(test)]
#[path = "rekv_tests.rs"]
mod tests;
