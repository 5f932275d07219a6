//! Stage kinds: one file each, thin glue between the runner and the library.
//!
//! A stage kind declares its inputs (roles), its defaults file
//! `stages/<kind>.toml` (the single source of defaults, compiled in), a
//! `resolve` hook that parses and validates its parameters, `run`, which
//! writes its outputs into the directory the runner hands it, and, for kinds
//! that work per item, `compute_item` (the contract is in `crate::dag::item`).
//! The DAG gets them as a value: [`registry`].
pub mod analyze;
pub mod attention;
pub mod chunk;
pub mod common;
pub mod fetch;
pub mod fusion_eval;
pub mod generate;
pub mod generate_tables;
pub mod lego_cache_speedup;
pub mod lego_early_exit;
pub mod lego_train;
pub mod lego_two_stage;
pub mod perplexity;
pub mod plot;
pub mod precompute;
pub mod press_eval;
pub mod rekv;
pub mod report;
pub mod spec_compare;
pub mod tasks;

pub use crate::dag::stage::{Registry, StageCtx, StageKind};

/// Every stage kind kvlab has.
pub fn registry() -> Registry {
    static KINDS: &[StageKind] = &[
        fetch::KIND,
        chunk::KIND,
        tasks::KIND,
        generate::KIND,
        perplexity::KIND,
        press_eval::KIND,
        analyze::KIND,
        attention::KIND,
        plot::KIND,
        rekv::KIND,
        precompute::KIND,
        fusion_eval::KIND,
        report::KIND,
        spec_compare::KIND,
        lego_train::KIND,
        lego_two_stage::KIND,
        lego_early_exit::KIND,
        lego_cache_speedup::KIND,
    ];
    Registry(KINDS)
}

pub fn find(kind: &str) -> Option<&'static StageKind> {
    registry().find(kind)
}
