//! The stage contract: what a stage kind declares and what a running stage
//! sees. The DAG knows stage kinds only through these types and the
//! [`Registry`] it is handed; the kinds themselves live in `crate::stages`.

use super::executor::Executor;
use super::item::{self, ItemSpec};
use super::params::Params;
use super::progress::Progress;
use crate::error::{input_err, Result};
use crate::store::publish::Outcome;
use crate::store::{Artifact, Store};
use crate::toml_file::parse_toml;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct StageKind {
    pub kind: &'static str,
    /// Bumped by hand whenever the stage's output changes for equal inputs.
    pub version: u32,
    pub inputs: &'static [&'static str],
    pub optional_inputs: &'static [&'static str],
    /// Wired to every other stage of the pipeline (role = that stage's name)
    /// instead of declared inputs; for stages that summarise a whole run.
    pub all_upstream: bool,
    /// Parameters left out of the key (e.g. a local path whose content digest is hashed instead).
    pub unhashed: &'static [&'static str],
    /// Contents of `stages/<kind>.toml`.
    pub defaults: &'static str,
    /// Parse and check the merged parameters; may rewrite them (e.g. expand a pin).
    pub resolve: fn(&mut Params) -> Result<()>,
    pub run: fn(&StageCtx) -> Result<()>,
    /// Computes one item of this kind from its spec alone (see `dag::item`);
    /// `None` for kinds that have no items.
    pub compute_item: Option<item::ComputeItem>,
}

impl StageKind {
    pub fn defaults(&self) -> Result<toml::Table> {
        let file = format!("stages/{}.toml", self.kind);
        parse_toml(self.defaults, Path::new(&file))
    }
}

/// The stage kinds a plan may use, handed to the DAG as a value.
#[derive(Debug, Clone, Copy)]
pub struct Registry(pub &'static [StageKind]);

impl Registry {
    pub fn find(&self, kind: &str) -> Option<&'static StageKind> {
        self.0.iter().find(|k| k.kind == kind)
    }

    pub fn kinds(&self) -> &'static [StageKind] {
        self.0
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|k| k.kind).collect()
    }
}

/// One stage's line in a run: what happened and how long it took.
#[derive(Debug, Clone)]
pub struct StageReport {
    pub stage: String,
    pub kind: String,
    pub key: String,
    pub outcome: Outcome,
    pub wall_s: f64,
    /// Items this stage computed and found cached (0, 0 for kinds without items).
    pub items_computed: usize,
    pub items_cached: usize,
}

/// Facts about the run in progress, for stages that describe it (`report`).
/// Never part of a key: a cached stage keeps the facts of the run that made it.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    pub pipeline: String,
    pub description: String,
    pub file: PathBuf,
    /// Stages already processed in this run, in order.
    pub stages: Vec<StageReport>,
}

/// What a running stage sees.
pub struct StageCtx<'a> {
    pub params: &'a Params,
    /// role -> upstream artifact
    pub inputs: &'a BTreeMap<String, Artifact>,
    /// Write outputs here; the runner publishes the directory on success.
    pub out: &'a Path,
    pub store: &'a Store,
    pub kind: &'static StageKind,
    pub run: &'a RunInfo,
    /// When set, every planned item's spec is also written to `<dir>/<key>.json`
    /// (`kvlab run --write-specs`), to rerun one item with `kvlab item`.
    pub spec_dir: Option<&'a Path>,
    /// Who computes the items (the runner's process by default).
    pub executor: &'a Executor,
    items: RefCell<ItemLog>,
}

#[derive(Default)]
struct ItemLog {
    keys: Vec<String>,
    computed: usize,
    cached: usize,
}

impl<'a> StageCtx<'a> {
    pub fn new(
        params: &'a Params,
        inputs: &'a BTreeMap<String, Artifact>,
        out: &'a Path,
        store: &'a Store,
        kind: &'static StageKind,
        run: &'a RunInfo,
    ) -> Self {
        StageCtx {
            params,
            inputs,
            out,
            store,
            kind,
            run,
            spec_dir: None,
            executor: &Executor::Local,
            items: RefCell::new(ItemLog::default()),
        }
    }

    pub fn input(&self, role: &str) -> Result<&Artifact> {
        self.inputs.get(role).ok_or_else(|| {
            input_err(
                self.params.file.display(),
                format!("stages.{}.inputs.{role}", self.params.stage),
                "input not wired",
            )
        })
    }

    /// The first file of input `role` whose name ends with `suffix`.
    pub fn input_file(&self, role: &str, suffix: &str) -> Result<PathBuf> {
        self.input(role)?
            .files_ending(suffix)
            .into_iter()
            .next()
            .ok_or_else(|| {
                self.params.err(
                    &format!("inputs.{role}"),
                    format!("the {role} input holds no {suffix} file"),
                )
            })
    }

    pub fn name(&self) -> &str {
        &self.params.stage
    }

    /// A spec for an item of this stage's kind.
    pub fn item_spec(&self, preimage: serde_json::Value, work: serde_json::Value) -> ItemSpec {
        ItemSpec::new(self.kind, preimage, work)
    }

    /// Each spec's object, looked up or computed by the run's executor, in
    /// order. The stage's own artifact keeps them alive.
    pub fn items(&self, specs: &[ItemSpec], progress: &mut Progress) -> Result<Vec<Artifact>> {
        if let Some(dir) = self.spec_dir {
            for spec in specs {
                spec.write(&dir.join(format!("{}.json", spec.key())))?;
            }
        }
        let done = self
            .executor
            .run_items(self.store, self.kind, self.name(), specs, progress)?;
        let mut log = self.items.borrow_mut();
        let mut out = Vec::with_capacity(done.len());
        for (a, outcome) in done {
            log.keys.push(a.key().to_string());
            match outcome {
                Outcome::Computed => log.computed += 1,
                Outcome::Cached => log.cached += 1,
            }
            out.push(a);
        }
        Ok(out)
    }

    pub fn progress(&self, len: u64, unit: &str) -> Progress {
        Progress::new(&self.params.stage, len, unit)
    }

    /// Keys of the items used so far, and how many were computed / cached.
    pub fn take_items(&self) -> (Vec<String>, usize, usize) {
        let log = std::mem::take(&mut *self.items.borrow_mut());
        (log.keys, log.computed, log.cached)
    }
}
