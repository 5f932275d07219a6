//! Seed 004's speed tables: plain decoding against its speculative variants,
//! one row per (role, method) — TTFT, TPOT, tokens/s, acceptance rate, mean
//! accepted length — and each method's speedup over the baseline's tokens/s.

use crate::error::Result;
use polars::prelude::*;
use std::path::Path;

/// `outputs.parquet` of each generate stage, by role (the baseline first).
pub fn compare(inputs: &[(String, &Path)]) -> Result<DataFrame> {
    let mut frames = Vec::new();
    for (role, path) in inputs {
        let df = super::scan(path)?
            .group_by([col("method")])
            .agg([
                len().cast(DataType::Int64).alias("n_samples"),
                col("ttft_ms").mean().alias("ttft_ms"),
                col("tpot_ms").mean().alias("tpot_ms"),
                col("tokens_per_s").mean().alias("tokens_per_s"),
                col("acceptance_rate").mean().alias("acceptance_rate"),
                col("mean_accepted_len").mean().alias("mean_accepted_len"),
                col("n_tokens").sum().alias("tokens"),
            ])
            .with_column(lit(role.clone()).alias("role"))
            .sort(["method"], Default::default())
            .collect()?;
        frames.push(df);
    }
    let mut all = frames.remove(0);
    let base = all
        .column("tokens_per_s")?
        .f64()?
        .mean()
        .unwrap_or(f64::NAN);
    for f in frames {
        all.vstack_mut(&f)?;
    }
    let out = all
        .lazy()
        .with_column((col("tokens_per_s") / lit(base)).alias("speedup"))
        .select([
            col("role"),
            col("method"),
            col("n_samples"),
            col("tokens"),
            col("ttft_ms"),
            col("tpot_ms"),
            col("tokens_per_s"),
            col("speedup"),
            col("acceptance_rate"),
            col("mean_accepted_len"),
        ])
        .collect()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::write_parquet;

    fn outputs(
        dir: &Path,
        name: &str,
        method: &str,
        tps: &[f64],
        acc: &[f64],
    ) -> std::path::PathBuf {
        let n = tps.len();
        let mut df = df!(
            "method" => vec![method; n],
            "ttft_ms" => vec![10.0; n],
            "tpot_ms" => vec![5.0; n],
            "tokens_per_s" => tps.to_vec(),
            "acceptance_rate" => acc.to_vec(),
            "mean_accepted_len" => acc.iter().map(|a| a * 4.0).collect::<Vec<_>>(),
            "n_tokens" => vec![10i64; n],
        )
        .unwrap();
        let p = dir.join(name);
        write_parquet(&mut df, &p).unwrap();
        p
    }

    #[test]
    fn speedup_is_against_the_baseline_mean() {
        let dir = std::env::temp_dir().join(format!("kvlab-speccmp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = outputs(&dir, "a.parquet", "greedy", &[10.0, 30.0], &[0.0, 0.0]);
        let b = outputs(&dir, "b.parquet", "lookup3/g4", &[40.0, 40.0], &[0.5, 0.7]);
        let t = compare(&[("baseline".into(), &a), ("lookup".into(), &b)]).unwrap();
        assert_eq!(t.height(), 2);
        let speed: Vec<f64> = t
            .column("speedup")
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert!(
            (speed[0] - 1.0).abs() < 1e-12 && (speed[1] - 2.0).abs() < 1e-12,
            "{speed:?}"
        );
        let acc = t
            .column("acceptance_rate")
            .unwrap()
            .f64()
            .unwrap()
            .get(1)
            .unwrap();
        assert!((acc - 0.6).abs() < 1e-12);
        let n = t.column("tokens").unwrap().i64().unwrap().get(0).unwrap();
        assert_eq!(n, 20);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
