//! One error type for the library. `Input` is the user's fault (bad pipeline,
//! bad parameter, bad file) and maps to exit code 2; everything else is ours or
//! the machine's and maps to 1.

use std::fmt::Display;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: names the file and the field (or tensor) at fault.
    #[error("{file}: {field}: {msg}")]
    Input {
        file: String,
        field: String,
        msg: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("tensor op failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("parquet/polars: {0}")]
    Polars(#[from] polars::error::PolarsError),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input { .. } => 2,
            _ => 1,
        }
    }
}

/// A user-input error naming `file` and `field`.
pub fn input_err(file: impl Display, field: impl Display, msg: impl Display) -> Error {
    Error::Input {
        file: file.to_string(),
        field: field.to_string(),
        msg: msg.to_string(),
    }
}

pub fn other(msg: impl Display) -> Error {
    Error::Other(msg.to_string())
}

/// Attach a context line to an io::Error (usually the path).
pub trait IoContext<T> {
    fn ctx(self, context: impl Display) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: impl Display) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: context.to_string(),
            source,
        })
    }
}
