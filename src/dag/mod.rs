//! Pipelines: parsing and validating pipeline files into plans, running them
//! against the store, and explaining what is cached or stale.

pub mod executor;
pub mod item;
pub mod params;
pub mod plan;
pub mod progress;
pub mod runner;
pub mod slurm;
pub mod slurm_config;
pub mod stage;
pub mod stage_docs;
pub mod status;
#[cfg(test)]
mod tests_mutation;

pub use plan::Plan;
pub use stage::{Registry, StageCtx, StageKind};
