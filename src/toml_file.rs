//! Reading TOML with errors that name the file and line on one line.

use crate::error::{input_err, Result};
use std::path::Path;

pub fn parse_toml(text: &str, file: &Path) -> Result<toml::Table> {
    text.parse::<toml::Table>().map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
            .unwrap_or(0);
        let msg = e.message().replace('\n', " ");
        input_err(
            file.display(),
            format!("line {line}"),
            format!("TOML syntax error: {msg}"),
        )
    })
}

pub fn read_toml(file: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| input_err(file.display(), "-", format!("cannot read: {e}")))?;
    parse_toml(&text, file)
}
