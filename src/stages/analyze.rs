//! Stage `analyze`: token statistics of a chunks table (and of a tasks
//! table, when wired) as Parquet: token_stats, doc_stats, task_stats and
//! the long-format summary of all of them.

use super::{StageCtx, StageKind};
use crate::analysis::{self, columns};
use crate::dag::params::Params;
use crate::error::{input_err, Result};
use polars::prelude::*;
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const KIND: StageKind = StageKind {
    kind: "analyze",
    version: 1,
    inputs: &["chunks"],
    all_upstream: false,
    optional_inputs: &["tasks"],
    unhashed: &[],
    defaults: include_str!("../../stages/analyze.toml"),
    resolve,
    run,
    compute_item: None,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeParams {
    pub dataset: String,
}

fn resolve(p: &mut Params) -> Result<()> {
    let a: AnalyzeParams = p.parse()?;
    if a.dataset.trim().is_empty() {
        return Err(p.err("dataset", "must not be empty"));
    }
    Ok(())
}

fn run(ctx: &StageCtx) -> Result<()> {
    let params: AnalyzeParams = ctx.params.parse()?;
    let chunks = ctx.input("chunks")?.path("chunks.parquet");
    let tasks = ctx.inputs.get("tasks").map(|a| a.path("tasks.parquet"));
    analyze(&chunks, tasks.as_deref(), &params.dataset, ctx.out)?;
    Ok(())
}

/// Scan `path`, which an upstream artifact must contain, and check its columns.
pub(crate) fn scan_checked(path: &Path, want: &[(&str, columns::Kind)]) -> Result<LazyFrame> {
    if !path.is_file() {
        let dir = path.parent().unwrap_or(path);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        return Err(input_err(
            dir.display(),
            name,
            "the input artifact has no such table",
        ));
    }
    let mut lf = analysis::scan(path)?;
    columns::check(&mut lf, path, want)?;
    Ok(lf)
}

/// Write the analysis tables for `chunks` (and `tasks`) into `out`; returns
/// the files written.
pub fn analyze(
    chunks: &Path,
    tasks: Option<&Path>,
    dataset: &str,
    out: &Path,
) -> Result<Vec<PathBuf>> {
    let lf = scan_checked(chunks, columns::CHUNKS)?;
    let mut token = analysis::token_stats(lf.clone(), dataset)?;
    let mut docs = analysis::doc_stats(lf)?;
    let mut task = match tasks {
        Some(p) => Some(analysis::task_stats(scan_checked(p, columns::TASKS)?)?),
        None => None,
    };

    let mut parts = vec![
        ("token_stats", &token, "dataset"),
        ("doc_stats", &docs, "doc_id"),
    ];
    if let Some(t) = &task {
        parts.push(("task_stats", t, "task"));
    }
    let mut summary = analysis::summary(&parts)?;

    let mut written = Vec::new();
    let mut write = |df: &mut DataFrame, name: &str| -> Result<()> {
        let path = out.join(name);
        crate::table::write_parquet(df, &path)?;
        written.push(path);
        Ok(())
    };
    write(&mut token, "token_stats.parquet")?;
    write(&mut docs, "doc_stats.parquet")?;
    if let Some(t) = &mut task {
        write(t, "task_stats.parquet")?;
    }
    write(&mut summary, "summary.parquet")?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testdata::{chunks_fixture, tasks_fixture, write_fixture};
    use crate::plot::testing::{cleanup, tempdir};
    use crate::table::read_parquet;

    #[test]
    fn analysis_stage_writes_all_tables() {
        let dir = tempdir("analyze-stage");
        let chunks = write_fixture(&dir, "chunks.parquet", chunks_fixture());
        let tasks = write_fixture(&dir, "tasks.parquet", tasks_fixture());
        let out = dir.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let files = analyze(&chunks, Some(&tasks), "toy", &out).unwrap();
        assert_eq!(files.len(), 4);

        let summary = read_parquet(&out.join("summary.parquet")).unwrap();
        // token_stats: 9 numeric columns; doc_stats: 3 docs x 2; task_stats: 3 tasks x 7
        assert_eq!(summary.height(), 9 + 6 + 21);
        let total = summary
            .lazy()
            .filter(
                col("table")
                    .eq(lit("token_stats"))
                    .and(col("metric").eq(lit("total_tokens"))),
            )
            .collect()
            .unwrap();
        assert_eq!(
            total.column("key").unwrap().str().unwrap().get(0),
            Some("toy")
        );
        assert_eq!(
            total.column("value").unwrap().f64().unwrap().get(0),
            Some(18.0)
        );
        let tasks = read_parquet(&out.join("task_stats.parquet")).unwrap();
        assert_eq!(tasks.height(), 3);

        // without tasks: no task_stats table
        let out2 = dir.join("out2");
        std::fs::create_dir_all(&out2).unwrap();
        analyze(&chunks, None, "toy", &out2).unwrap();
        assert!(!out2.join("task_stats.parquet").exists());
        cleanup(&dir);
    }

    #[test]
    fn analysis_stage_rejects_wrong_tables() {
        let dir = tempdir("analyze-bad");
        let out = dir.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let missing = analyze(&dir.join("chunks.parquet"), None, "x", &out).unwrap_err();
        assert_eq!(missing.exit_code(), 2, "{missing}");
        let bad = df!("doc_id" => ["a"], "chunk_id" => [0i64], "start_tok" => ["zero"], "n_tok" => [3i64]).unwrap();
        let path = write_fixture(&dir, "chunks.parquet", bad);
        let e = analyze(&path, None, "x", &out).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().contains("start_tok") && e.to_string().contains("integer"),
            "{e}"
        );
        cleanup(&dir);
    }

    #[test]
    fn analysis_stage_params_are_checked() {
        let defaults = KIND.defaults().unwrap();
        let mut p = Params {
            table: defaults,
            file: "p.toml".into(),
            stage: "an".into(),
        };
        resolve(&mut p).unwrap();
        p.table
            .insert("dataset".into(), toml::Value::String(" ".into()));
        let e = resolve(&mut p).unwrap_err();
        assert!(e.to_string().contains("stages.an.dataset"), "{e}");
    }
}
