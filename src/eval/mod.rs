//! Evaluation metrics.

pub mod perplexity;
pub mod cache_speedup;
pub mod two_stage;
