//! Token statistics of a chunked dataset: per document and overall.

use crate::error::Result;
use polars::prelude::*;

/// One row per document, in first-seen order: `doc_id`, `n_chunks`,
/// `n_tokens`. A document's tokens are the extent its chunks cover,
/// max(start_tok + n_tok), so overlapping chunks are not counted twice.
pub fn doc_stats(chunks: LazyFrame) -> Result<DataFrame> {
    Ok(doc_stats_lazy(chunks).collect()?)
}

fn doc_stats_lazy(chunks: LazyFrame) -> LazyFrame {
    chunks.group_by_stable([col("doc_id")]).agg([
        len().cast(DataType::Int64).alias("n_chunks"),
        (col("start_tok").cast(DataType::Int64) + col("n_tok").cast(DataType::Int64))
            .max()
            .alias("n_tokens"),
    ])
}

/// One row for the whole dataset named `dataset`: `dataset`, `n_docs`,
/// `n_chunks`, `total_tokens` (sum of chunk lengths), mean / median / p90
/// (linear interpolation) / min / max chunk tokens, and mean doc tokens.
pub fn token_stats(chunks: LazyFrame, dataset: &str) -> Result<DataFrame> {
    let n_tok = || col("n_tok").cast(DataType::Float64);
    let overall = chunks
        .clone()
        .select([
            col("doc_id")
                .n_unique()
                .cast(DataType::Int64)
                .alias("n_docs"),
            len().cast(DataType::Int64).alias("n_chunks"),
            col("n_tok")
                .cast(DataType::Int64)
                .sum()
                .alias("total_tokens"),
            n_tok().mean().alias("mean_chunk_tokens"),
            n_tok().median().alias("median_chunk_tokens"),
            n_tok()
                .quantile(lit(0.9), QuantileMethod::Linear)
                .alias("p90_chunk_tokens"),
            col("n_tok")
                .cast(DataType::Int64)
                .min()
                .alias("min_chunk_tokens"),
            col("n_tok")
                .cast(DataType::Int64)
                .max()
                .alias("max_chunk_tokens"),
        ])
        .collect()?;
    let per_doc = doc_stats_lazy(chunks)
        .select([col("n_tokens")
            .cast(DataType::Float64)
            .mean()
            .alias("mean_doc_tokens")])
        .collect()?;
    let mut out = overall.hstack(per_doc.columns())?;
    out.insert_column(0, Column::new("dataset".into(), [dataset]))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testdata::{chunks_fixture, write_fixture};
    use crate::plot::testing::{cleanup, tempdir};

    fn f(df: &DataFrame, col: &str) -> f64 {
        df.column(col)
            .unwrap()
            .cast(&DataType::Float64)
            .unwrap()
            .f64()
            .unwrap()
            .get(0)
            .unwrap()
    }

    #[test]
    fn token_stats_from_parquet() {
        let dir = tempdir("token-stats");
        let path = write_fixture(&dir, "chunks.parquet", chunks_fixture());
        let lf = crate::analysis::scan(&path).unwrap();
        let t = token_stats(lf.clone(), "toy").unwrap();
        assert_eq!(t.height(), 1);
        assert_eq!(
            t.column("dataset").unwrap().str().unwrap().get(0),
            Some("toy")
        );
        // chunk lengths: a = 4,4,2  b = 4,1  c = 3
        assert_eq!(f(&t, "n_docs"), 3.0);
        assert_eq!(f(&t, "n_chunks"), 6.0);
        assert_eq!(f(&t, "total_tokens"), 18.0);
        assert_eq!(f(&t, "mean_chunk_tokens"), 3.0);
        assert_eq!(f(&t, "median_chunk_tokens"), 3.5);
        // sorted 1,2,3,4,4,4: position 0.9*5 = 4.5 -> 4
        assert_eq!(f(&t, "p90_chunk_tokens"), 4.0);
        assert_eq!(f(&t, "min_chunk_tokens"), 1.0);
        assert_eq!(f(&t, "max_chunk_tokens"), 4.0);
        assert_eq!(f(&t, "mean_doc_tokens"), 6.0);

        let d = doc_stats(lf).unwrap();
        let ids: Vec<_> = d
            .column("doc_id")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
        let get = |c: &str| -> Vec<i64> {
            d.column(c)
                .unwrap()
                .i64()
                .unwrap()
                .into_no_null_iter()
                .collect()
        };
        assert_eq!(get("n_chunks"), [3, 2, 1]);
        assert_eq!(get("n_tokens"), [10, 5, 3]);
        cleanup(&dir);
    }

    #[test]
    fn overlapping_chunks_count_the_extent() {
        let df = df!(
            "doc_id" => ["d", "d"],
            "start_tok" => [0i64, 2],
            "n_tok" => [4i64, 4],
        )
        .unwrap();
        let d = doc_stats(df.clone().lazy()).unwrap();
        assert_eq!(d.column("n_tokens").unwrap().i64().unwrap().get(0), Some(6));
        let t = token_stats(df.lazy(), "x").unwrap();
        assert_eq!(f(&t, "total_tokens"), 8.0);
        assert_eq!(f(&t, "mean_doc_tokens"), 6.0);
    }
}
