//! Small synthetic chunks/tasks tables with the exact schemas the chunk and
//! tasks stages write, for the analysis, plot and stage tests.

use polars::prelude::*;
use std::path::{Path, PathBuf};

fn ids(lists: &[&[u32]]) -> Series {
    let parts: Vec<Series> = lists.iter().map(|l| Series::new("".into(), *l)).collect();
    Series::new("token_ids".into(), parts)
}

fn strs(name: &str, lists: &[&[&str]]) -> Series {
    let parts: Vec<Series> = lists.iter().map(|l| Series::new("".into(), *l)).collect();
    Series::new(name.into(), parts)
}

/// Docs a (chunks of 4, 4, 2 tokens), b (4, 1), c (3): 18 tokens in 6 chunks.
pub fn chunks_fixture() -> DataFrame {
    let n_tok = [4i64, 4, 2, 4, 1, 3];
    let toks: Vec<Vec<u32>> = n_tok.iter().map(|&n| (0..n as u32).collect()).collect();
    let tok_refs: Vec<&[u32]> = toks.iter().map(|v| v.as_slice()).collect();
    let mut df = df!(
        "doc_id" => ["a", "a", "a", "b", "b", "c"],
        "chunk_id" => [0i64, 1, 2, 0, 1, 0],
        "start_tok" => [0i64, 4, 8, 0, 4, 0],
        "n_tok" => n_tok,
        "text" => ["t0", "t1", "t2", "t3", "t4", "t5"],
        "ids_blake3" => ["h0", "h1", "h2", "h3", "h4", "h5"],
    )
    .unwrap();
    df.insert_column(5, ids(&tok_refs).into()).unwrap();
    df
}

/// needle ×3 (1000/1010/1020 tokens), niah_multivalue ×2 (4000/4200, 3
/// answers, 1 and 2 segments), multidoc_qa ×1 (2000, 3 segments), interleaved.
pub fn tasks_fixture() -> DataFrame {
    let mut df = df!(
        "sample_id" => ["n0", "v0", "n1", "q0", "v1", "n2"],
        "task" => ["needle", "niah_multivalue", "needle", "multidoc_qa", "niah_multivalue", "needle"],
        "context_tokens" => [1024i64, 4096, 1024, 2048, 4096, 1024],
        "depth" => [Some(0.1), Some(0.5), Some(0.9), None, Some(0.5), Some(0.5)],
        "question" => ["q?"; 6],
        "n_context_tokens" => [1000i64, 4000, 1010, 2000, 4200, 1020],
    )
    .unwrap();
    let seg: &[&[&str]] = &[
        &["s"],
        &["s"],
        &["s"],
        &["s1", "s2", "s3"],
        &["s1", "s2"],
        &["s"],
    ];
    let seg_ids: &[&[&str]] = &[
        &["a"],
        &["a"],
        &["a"],
        &["a", "b", "c"],
        &["a", "b"],
        &["a"],
    ];
    let answers: &[&[&str]] = &[
        &["x"],
        &["1", "2", "3"],
        &["x"],
        &["y"],
        &["4", "5", "6"],
        &["x"],
    ];
    df.insert_column(4, strs("segments", seg).into()).unwrap();
    df.insert_column(5, strs("segment_ids", seg_ids).into())
        .unwrap();
    df.insert_column(7, strs("answers", answers).into())
        .unwrap();
    df
}

/// Write `df` as `dir/name` through the project's Parquet writer.
pub fn write_fixture(dir: &Path, name: &str, mut df: DataFrame) -> PathBuf {
    let path = dir.join(name);
    crate::table::write_parquet(&mut df, &path).unwrap();
    path
}

#[test]
fn fixtures_have_the_stage_schemas() {
    let c = chunks_fixture();
    let names: Vec<&str> = c
        .get_column_names()
        .into_iter()
        .map(|n| n.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "doc_id",
            "chunk_id",
            "start_tok",
            "n_tok",
            "text",
            "token_ids",
            "ids_blake3"
        ]
    );
    assert_eq!(
        c.column("token_ids").unwrap().dtype(),
        &DataType::List(Box::new(DataType::UInt32))
    );
    let t = tasks_fixture();
    let names: Vec<&str> = t
        .get_column_names()
        .into_iter()
        .map(|n| n.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "sample_id",
            "task",
            "context_tokens",
            "depth",
            "segments",
            "segment_ids",
            "question",
            "answers",
            "n_context_tokens"
        ]
    );
}
