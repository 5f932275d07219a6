//! A stage kind's documentation, read from the comments of its defaults file
//! `stages/<kind>.toml`, so the file stays the one place a parameter, its
//! default and its doc are written:
//!
//! ```toml
//! # <kind>: one-line summary
//! # outputs: what the stage writes
//!
//! # Doc of `name` (one or more comment lines directly above it).
//! name = 10
//! ```

use crate::error::{input_err, Result};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ParamDoc {
    pub name: String,
    /// The default as TOML (`"text"`, `[1, 2]`, `true`).
    pub default: String,
    /// The comment lines above the key, without `# `.
    pub doc: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KindDoc {
    pub summary: String,
    pub outputs: String,
    pub params: Vec<ParamDoc>,
}

/// Parse `text`, the defaults file of `kind` (named `file` in errors). Every
/// parameter must have a doc line; the header must name the kind and its outputs.
pub fn parse(kind: &str, text: &str, file: &str) -> Result<KindDoc> {
    let values = crate::toml_file::parse_toml(text, std::path::Path::new(file))?;
    let summary = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix(&format!("# {kind}: ")))
        .ok_or_else(|| input_err(file, "line 1", format!("must read `# {kind}: <summary>`")))?
        .trim()
        .to_string();
    let mut outputs = None;
    let mut pending: Vec<String> = Vec::new();
    let mut params = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let t = line.trim();
        if let Some(o) = t.strip_prefix("# outputs:") {
            outputs = Some(o.trim().to_string());
        } else if let Some(c) = t.strip_prefix('#') {
            pending.push(c.strip_prefix(' ').unwrap_or(c).trim_end().to_string());
        } else if t.is_empty() {
            pending.clear();
        } else if t.starts_with('[') {
            // A table header ends the top-level parameters (none of ours has one).
            break;
        } else if let Some(name) = key_of(t) {
            if pending.is_empty() {
                return Err(input_err(
                    file,
                    name,
                    format!("line {}: no comment line documents this parameter", i + 1),
                ));
            }
            let default = values.get(name).map(|v| v.to_string()).unwrap_or_default();
            params.push(ParamDoc {
                name: name.to_string(),
                default,
                doc: std::mem::take(&mut pending),
            });
        }
    }
    let outputs = outputs
        .filter(|o| !o.is_empty())
        .ok_or_else(|| input_err(file, "header", "missing `# outputs: ...` line"))?;
    Ok(KindDoc {
        summary,
        outputs,
        params,
    })
}

/// The bare key of a `key = value` line, if it is one.
fn key_of(line: &str) -> Option<&str> {
    let (k, _) = line.split_once('=')?;
    let k = k.trim();
    (!k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    .then_some(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# demo: does a thing.\n# outputs: `a.parquet`, `b.svg`\n\n\
# Rows per table.\n# Second line.\nrows = 10\n# A list.\nxs = [1, 2]\n\n# Name.\nname = \"x # not a comment\"\n";

    #[test]
    fn docs_defaults_and_outputs_come_from_comments() {
        let d = parse("demo", TEXT, "stages/demo.toml").unwrap();
        assert_eq!(d.summary, "does a thing.");
        assert_eq!(d.outputs, "`a.parquet`, `b.svg`");
        let names: Vec<&str> = d.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["rows", "xs", "name"]);
        assert_eq!(d.params[0].doc, ["Rows per table.", "Second line."]);
        assert_eq!(d.params[0].default, "10");
        assert_eq!(d.params[1].default, "[1, 2]");
        assert_eq!(d.params[2].default, "\"x # not a comment\"");
        assert_eq!(d.params[2].doc, ["Name."]);
    }

    #[test]
    fn undocumented_or_headerless_files_are_rejected() {
        let e = parse("demo", "# demo: x\n# outputs: y\n\nn = 1\n", "f.toml").unwrap_err();
        assert!(e.to_string().starts_with("f.toml: n: line 4"), "{e}");
        let e = parse("other", TEXT, "f.toml").unwrap_err();
        assert!(e.to_string().contains("# other: <summary>"), "{e}");
        let e = parse("demo", "# demo: x\n\n# d\nn = 1\n", "f.toml").unwrap_err();
        assert!(e.to_string().contains("# outputs:"), "{e}");
        // A blank line detaches a comment from the key below it.
        let e = parse("demo", "# demo: x\n# outputs: y\n# d\n\nn = 1\n", "f.toml").unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }
}
