//! Training on candle autograd: seed 001's LEGO experiment (a small llama
//! decoder trained in two phases with hard-example mining). Checkpoints are
//! HF llama directories, so the ordinary loader and forward run them.

pub mod config;
pub mod data;
pub mod lego;
pub mod mining;
pub mod model;
pub mod trainer;

#[cfg(test)]
mod tests;

pub use config::{MiningScore, Tokenization, TrainConfig};
pub use data::Corpus;
pub use lego::{run_lego, LegoRun, PhaseMetrics};
pub use mining::{select_hardest, Mined};
pub use model::TrainModel;
#[cfg(test)]
mod real_run;
