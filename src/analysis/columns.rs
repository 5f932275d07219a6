//! The input tables' expected columns, checked before any analysis so a
//! wrong file is reported by column name rather than as a polars error.

use crate::error::{input_err, Result};
use polars::prelude::*;
use std::path::Path;

/// The kind of a column, loose enough to accept any integer width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    Float,
    List,
}

impl Kind {
    fn accepts(self, dtype: &DataType) -> bool {
        match self {
            Kind::Str => matches!(dtype, DataType::String),
            Kind::Int => dtype.is_integer(),
            Kind::Float => dtype.is_float() || dtype.is_integer(),
            Kind::List => matches!(dtype, DataType::List(_)),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Str => "string",
            Kind::Int => "integer",
            Kind::Float => "float",
            Kind::List => "list",
        }
    }
}

/// Columns of chunks.parquet the analyses read.
pub const CHUNKS: &[(&str, Kind)] = &[
    ("doc_id", Kind::Str),
    ("chunk_id", Kind::Int),
    ("start_tok", Kind::Int),
    ("n_tok", Kind::Int),
];

/// Columns of tasks.parquet the analyses read.
pub const TASKS: &[(&str, Kind)] = &[
    ("sample_id", Kind::Str),
    ("task", Kind::Str),
    ("context_tokens", Kind::Int),
    ("segments", Kind::List),
    ("answers", Kind::List),
    ("n_context_tokens", Kind::Int),
];

/// Check that `lf` (read from `path`) has each wanted column with a fitting type.
pub fn check(lf: &mut LazyFrame, path: &Path, want: &[(&str, Kind)]) -> Result<()> {
    let schema = lf.collect_schema()?;
    for &(name, kind) in want {
        match schema.get(name) {
            None => {
                let have: Vec<&str> = schema.iter_names().map(|n| n.as_str()).collect();
                return Err(input_err(
                    path.display(),
                    name,
                    format!("missing column (columns: {})", have.join(", ")),
                ));
            }
            Some(dtype) if !kind.accepts(dtype) => {
                return Err(input_err(
                    path.display(),
                    name,
                    format!("expected a {} column, found {dtype}", kind.name()),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}
