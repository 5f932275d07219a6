//! Evaluation metrics.

pub mod cache_speedup;
pub mod compressed_perplexity;
pub mod perplexity;
pub mod press_run;
pub mod two_stage;

#[cfg(test)]
mod compressed_perplexity_tests;
#[cfg(test)]
mod press_real_tests;
#[cfg(test)]
mod press_run_tests;
