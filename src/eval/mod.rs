//! Evaluation metrics.

pub mod cache_speedup;
pub mod perplexity;
pub mod two_stage;
