//! Evaluation metrics.

pub mod compressed_perplexity;
pub mod perplexity;
pub mod press_qa;
pub mod press_run;
pub mod press_tables;
pub mod qa_metrics;

#[cfg(test)]
mod compressed_perplexity_tests;
#[cfg(test)]
mod press_real_tests;
#[cfg(test)]
mod press_run_tests;
