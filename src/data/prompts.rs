//! Prompt datasets for generation: MT-Bench (first turns), HumanEval
//! (function signatures to complete) and the GSM8K subset (questions).

use crate::error::{input_err, IoContext, Result};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Prompt {
    pub id: String,
    pub text: String,
}

pub const DATASETS: &[&str] = &["mt_bench", "humaneval", "gsm8k"];

/// Read `file` (JSON lines) as `dataset`; errors name the file and line.
pub fn load_prompts(dataset: &str, file: &Path) -> Result<Vec<Prompt>> {
    let text = std::fs::read_to_string(file).ctx(format!("read {}", file.display()))?;
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = |what: &str| input_err(file.display(), format!("line {}", i + 1), what);
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(&format!("invalid JSON: {e}")))?;
        let field = |k: &str| v.get(k).ok_or_else(|| bad(&format!("missing field '{k}'")));
        let (id, text) = match dataset {
            "mt_bench" => (
                field("question_id")?.to_string(),
                field("turns")?
                    .get(0)
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| bad("turns[0] is not a string"))?
                    .to_string(),
            ),
            "humaneval" => (
                field("task_id")?.as_str().unwrap_or("").to_string(),
                field("prompt")?
                    .as_str()
                    .ok_or_else(|| bad("prompt is not a string"))?
                    .to_string(),
            ),
            "gsm8k" => (
                field("id")?.as_str().unwrap_or("").to_string(),
                field("prompt")?
                    .as_str()
                    .ok_or_else(|| bad("prompt is not a string"))?
                    .to_string(),
            ),
            other => {
                return Err(input_err(
                    file.display(),
                    "dataset",
                    format!("unknown prompt dataset '{other}'"),
                ))
            }
        };
        out.push(Prompt { id, text });
    }
    Ok(out)
}
