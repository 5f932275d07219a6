//! Polars analyses over the Parquet tables the stages write. Each function
//! takes a `LazyFrame` (from [`scan`]) and returns a small `DataFrame`; the
//! `analyze` stage writes them out, `summary` flattens them for duckdb.

pub mod attention_output;
pub mod attention_stats;
pub mod columns;
pub mod fusion_figures;
pub mod fusion_summary;
pub mod press_figures;
pub mod rejections_table;
pub mod rekv;
pub mod rekv_figures;
pub mod rekv_output;
pub mod rekv_verdict;
pub mod spec_compare;
pub mod spec_press;
pub mod summary;
pub mod task_stats;
pub mod token_stats;
pub mod token_type;

use crate::error::{other, Result};
use polars::prelude::*;
use std::path::Path;

pub use summary::{long, summary};
pub use task_stats::task_stats;
pub use token_stats::{doc_stats, token_stats};

/// Lazily scan one Parquet file (no globbing: store paths are literal).
pub fn scan(path: &Path) -> Result<LazyFrame> {
    if !path.is_file() {
        return Err(other(format!("{}: no such Parquet file", path.display())));
    }
    let args = ScanArgsParquet {
        glob: false,
        ..Default::default()
    };
    Ok(LazyFrame::scan_parquet(
        PlRefPath::try_from_path(path)?,
        args,
    )?)
}

#[cfg(test)]
pub(crate) mod rekv_testdata;
#[cfg(test)]
pub(crate) mod testdata;
