//! An evaluation sample, as stored in `tasks.parquet`.

use crate::error::Result;
use polars::prelude::*;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub sample_id: String,
    pub task: String,
    /// Target context length in tokens.
    pub context_tokens: i64,
    /// Relative depth of the planted needle, for needle tasks.
    pub depth: Option<f64>,
    pub segments: Vec<String>,
    /// "<doc>#<chunk>" for essay chunks, "plant:<what>" for planted text.
    pub segment_ids: Vec<String>,
    pub question: String,
    pub answers: Vec<String>,
    /// Actual context length in tokens (sum over segments).
    pub n_context_tokens: i64,
}

/// Counts tokens of a text with the model's tokenizer.
pub type TokenCounter<'a> = &'a dyn Fn(&str) -> Result<usize>;

fn list_column(name: &str, rows: impl Iterator<Item = Vec<String>>) -> Column {
    let series: Vec<Series> = rows.map(|r| Series::new("".into(), r)).collect();
    Column::new(name.into(), series)
}

pub fn samples_frame(samples: &[Sample]) -> Result<DataFrame> {
    let s = samples;
    Ok(DataFrame::new_infer_height(vec![
        Column::new("sample_id".into(), s.iter().map(|x| x.sample_id.clone()).collect::<Vec<_>>()),
        Column::new("task".into(), s.iter().map(|x| x.task.clone()).collect::<Vec<_>>()),
        Column::new("context_tokens".into(), s.iter().map(|x| x.context_tokens).collect::<Vec<_>>()),
        Column::new("depth".into(), s.iter().map(|x| x.depth).collect::<Vec<_>>()),
        list_column("segments", s.iter().map(|x| x.segments.clone())),
        list_column("segment_ids", s.iter().map(|x| x.segment_ids.clone())),
        Column::new("question".into(), s.iter().map(|x| x.question.clone()).collect::<Vec<_>>()),
        list_column("answers", s.iter().map(|x| x.answers.clone())),
        Column::new("n_context_tokens".into(), s.iter().map(|x| x.n_context_tokens).collect::<Vec<_>>()),
    ])?)
}
