//! Where a stage's items are computed. Both executors run the same specs
//! through the same store, so keys and bytes are identical wherever an item
//! was made; only who runs `compute_item` differs.

use super::item::{self, ItemSpec};
use super::progress::Progress;
use super::slurm;
use super::slurm_config::SlurmConfig;
use super::stage::StageKind;
use crate::error::Result;
use crate::store::publish::Outcome;
use crate::store::{Artifact, Store};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Default, PartialEq)]
pub enum Executor {
    /// In the runner's process, one item after another.
    #[default]
    Local,
    /// Missing items as one Slurm array job per stage (see `dag::slurm`).
    Slurm(SlurmConfig),
}

impl Executor {
    /// Every spec's object, in order, with whether this run computed it.
    pub fn run_items(
        &self,
        store: &Store,
        kind: &StageKind,
        stage: &str,
        specs: &[ItemSpec],
        progress: &mut Progress,
    ) -> Result<Vec<(Artifact, Outcome)>> {
        match self {
            Executor::Local => specs
                .iter()
                .map(|spec| {
                    let r = item::compute(store, kind, spec)?;
                    progress.inc(1);
                    Ok(r)
                })
                .collect(),
            Executor::Slurm(cfg) => {
                let mut seen = BTreeSet::new();
                let mut missing = Vec::new();
                for spec in specs {
                    let key = spec.key();
                    if store.lookup(&key)?.is_none() && seen.insert(key) {
                        missing.push(spec);
                    }
                }
                if !missing.is_empty() {
                    slurm::run_array(cfg, store, stage, &missing)?;
                }
                let mut out = Vec::with_capacity(specs.len());
                for spec in specs {
                    let key = spec.key();
                    let a = store.lookup(&key)?.ok_or_else(|| {
                        crate::error::other(format!("item {key} vanished from the store"))
                    })?;
                    let outcome = if seen.contains(&key) {
                        Outcome::Computed
                    } else {
                        Outcome::Cached
                    };
                    out.push((a, outcome));
                    progress.inc(1);
                }
                Ok(out)
            }
        }
    }
}
