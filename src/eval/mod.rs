//! Evaluation metrics.

pub mod perplexity;
pub mod qa_metrics;
