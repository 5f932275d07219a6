//! Stage kinds: one file each, thin glue between the runner and the library.
//!
//! A stage kind declares its inputs (roles), its defaults file
//! `stages/<kind>.toml` (the single source of defaults, compiled in), a
//! `resolve` hook that parses and validates its parameters, and `run`, which
//! writes its outputs into the directory the runner hands it.

pub mod analyze;
pub mod chunk;
pub mod fetch;
pub mod generate;
pub mod perplexity;
pub mod plot;
pub mod tasks;

use crate::dag::params::Params;
use crate::dag::progress::Progress;
use crate::error::{input_err, Result};
use crate::store::publish::{Outcome, Produced};
use crate::store::{Artifact, Store};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug)]
pub struct StageKind {
    pub kind: &'static str,
    /// Bumped by hand whenever the stage's output changes for equal inputs.
    pub version: u32,
    pub inputs: &'static [&'static str],
    pub optional_inputs: &'static [&'static str],
    /// Parameters left out of the key (e.g. a local path whose content digest is hashed instead).
    pub unhashed: &'static [&'static str],
    /// Contents of `stages/<kind>.toml`.
    pub defaults: &'static str,
    /// Parse and check the merged parameters; may rewrite them (e.g. expand a pin).
    pub resolve: fn(&mut Params) -> Result<()>,
    pub run: fn(&StageCtx) -> Result<()>,
}

pub fn registry() -> &'static [StageKind] {
    static KINDS: &[StageKind] = &[
        fetch::KIND,
        chunk::KIND,
        tasks::KIND,
        generate::KIND,
        perplexity::KIND,
        analyze::KIND,
        plot::KIND,
    ];
    KINDS
}

pub fn find(kind: &str) -> Option<&'static StageKind> {
    registry().iter().find(|k| k.kind == kind)
}

pub fn defaults(kind: &StageKind) -> Result<toml::Table> {
    let file = format!("stages/{}.toml", kind.kind);
    crate::dag::toml_file::parse_toml(kind.defaults, Path::new(&file))
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
    items: RefCell<Vec<String>>,
}

impl<'a> StageCtx<'a> {
    pub fn new(
        params: &'a Params,
        inputs: &'a BTreeMap<String, Artifact>,
        out: &'a Path,
        store: &'a Store,
        kind: &'static StageKind,
    ) -> Self {
        StageCtx {
            params,
            inputs,
            out,
            store,
            kind,
            items: RefCell::new(Vec::new()),
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
    pub fn input_file(&self, role: &str, suffix: &str) -> Result<std::path::PathBuf> {
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

    /// A per-item object: cached by `preimage` (to which the stage kind, its
    /// version and the store schema are added), computed by `compute` if absent.
    /// The stage's own artifact keeps it alive.
    pub fn item(
        &self,
        mut preimage: serde_json::Value,
        compute: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<(Artifact, Outcome)> {
        if let serde_json::Value::Object(m) = &mut preimage {
            m.insert("item_of".into(), self.kind.kind.into());
            m.insert("version".into(), self.kind.version.into());
            m.insert("schema".into(), crate::store::STORE_SCHEMA.into());
        }
        let stage = format!("{}/item", self.kind.kind);
        let (a, outcome) = self.store.get_or_compute(&stage, &preimage, false, |dir| {
            compute(dir)?;
            Ok(Produced::default())
        })?;
        self.items.borrow_mut().push(a.key().to_string());
        Ok((a, outcome))
    }

    pub fn progress(&self, len: u64, unit: &str) -> Progress {
        Progress::new(&self.params.stage, len, unit)
    }

    pub fn take_items(&self) -> Vec<String> {
        std::mem::take(&mut self.items.borrow_mut())
    }
}

/// The `.gguf` file of the stage's `model` input.
pub fn model_file(ctx: &StageCtx) -> Result<std::path::PathBuf> {
    ctx.input_file("model", ".gguf")
}

/// `dtype` must name one of the engine's load modes, `kv_dtype` one of its
/// cache types.
pub fn check_dtype(p: &Params, dtype: &str, kv_dtype: &str) -> Result<()> {
    match crate::model_source::invalid_dtype(dtype, kv_dtype) {
        Some((field, msg)) => Err(p.err(field, msg)),
        None => Ok(()),
    }
}
