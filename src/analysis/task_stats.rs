//! Per-task statistics of generated long-context samples.

use crate::error::Result;
use polars::prelude::*;

/// One row per task, sorted by name: `task`, `n_samples`, mean / min / max
/// actual context tokens, mean target context tokens, mean number of
/// segments and mean number of answers per sample.
pub fn task_stats(tasks: LazyFrame) -> Result<DataFrame> {
    let ctx = || col("n_context_tokens").cast(DataType::Int64);
    Ok(tasks
        .group_by([col("task")])
        .agg([
            len().cast(DataType::Int64).alias("n_samples"),
            ctx()
                .cast(DataType::Float64)
                .mean()
                .alias("mean_context_tokens"),
            ctx().min().alias("min_context_tokens"),
            ctx().max().alias("max_context_tokens"),
            col("context_tokens")
                .cast(DataType::Float64)
                .mean()
                .alias("mean_target_tokens"),
            col("segments")
                .list()
                .len()
                .cast(DataType::Float64)
                .mean()
                .alias("mean_segments"),
            col("answers")
                .list()
                .len()
                .cast(DataType::Float64)
                .mean()
                .alias("mean_answers"),
        ])
        .sort(["task"], SortMultipleOptions::default())
        .collect()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testdata::{tasks_fixture, write_fixture};
    use crate::plot::testing::{cleanup, tempdir};

    #[test]
    fn task_stats_from_parquet() {
        let dir = tempdir("task-stats");
        let path = write_fixture(&dir, "tasks.parquet", tasks_fixture());
        let t = task_stats(crate::analysis::scan(&path).unwrap()).unwrap();
        let tasks: Vec<_> = t
            .column("task")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(tasks, ["multidoc_qa", "needle", "niah_multivalue"]);
        let i = |c: &str| -> Vec<i64> {
            t.column(c)
                .unwrap()
                .i64()
                .unwrap()
                .into_no_null_iter()
                .collect()
        };
        let f = |c: &str| -> Vec<f64> {
            t.column(c)
                .unwrap()
                .f64()
                .unwrap()
                .into_no_null_iter()
                .collect()
        };
        assert_eq!(i("n_samples"), [1, 3, 2]);
        assert_eq!(f("mean_context_tokens"), [2000.0, 1010.0, 4100.0]);
        assert_eq!(i("min_context_tokens"), [2000, 1000, 4000]);
        assert_eq!(i("max_context_tokens"), [2000, 1020, 4200]);
        assert_eq!(f("mean_target_tokens"), [2048.0, 1024.0, 4096.0]);
        assert_eq!(f("mean_segments"), [3.0, 1.0, 1.5]);
        assert_eq!(f("mean_answers"), [1.0, 1.0, 3.0]);
        cleanup(&dir);
    }
}
