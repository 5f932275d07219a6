//! Evaluation metrics.

pub mod perplexity;
