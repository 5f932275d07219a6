//! Writing and reading the Parquet tables through polars.

use crate::error::{IoContext, Result};
use polars::prelude::*;
use std::path::Path;

/// Write `df` to `path` as Parquet (zstd-compressed).
pub fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<()> {
    let file = std::fs::File::create(path).ctx(format!("create {}", path.display()))?;
    ParquetWriter::new(file)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(df)?;
    Ok(())
}

/// Read a whole Parquet file into memory.
pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = std::fs::File::open(path).ctx(format!("open {}", path.display()))?;
    Ok(ParquetReader::new(file).finish()?)
}
