//! Items as data: the unit of caching and of distributed work.
//!
//! A stage over many things (documents, prompts, windows, method settings)
//! does its work in three steps:
//!
//! 1. **plan** — in `run`, from its resolved parameters and inputs, it builds
//!    one [`ItemSpec`] per thing. A spec is plain JSON: the item's *preimage*
//!    (content digests and parameters: everything that determines its bytes;
//!    its blake3 is the item's key) and its *work* (what computing it needs
//!    beyond that: store files named by object key and relative path, token
//!    ids, a prompt).
//! 2. **compute** — the kind's `compute_item` makes one item from its spec
//!    alone, writing files into the directory it is handed. It may read only
//!    the spec and the store objects the spec names; never the pipeline file,
//!    the stage's other items, or anything by absolute path. So an item is
//!    computed the same in the runner's process ([`StageCtx::items`]), in a
//!    separate `kvlab item --store DIR --spec FILE`, or in a Slurm array task,
//!    and the bytes are identical wherever it ran. Timings an item measures
//!    about itself go into its manifest (`provenance.measurements`), not its
//!    files, for the same reason.
//! 3. **assemble** — back in `run`, the stage reads its items' files (and
//!    measurements) and writes its own tables; the stage object lists the item
//!    keys, which keeps them alive against gc.
//!
//! `chunk` is the worked example: one item per document, preimage =
//! {tokenizer digest, document blake3, chunk_tokens, paragraphs}, work = the
//! GGUF and the document as store files; the item is the document's
//! `chunks.parquet`, and the stage concatenates them, adding `doc_id`. Adding
//! a document plans one more spec; the others are found by key.
//!
//! [`StageCtx::items`]: super::stage::StageCtx::items

use super::stage::StageKind;
use crate::error::{input_err, IoContext, Result};
use crate::store::hashing::key_of;
use crate::store::publish::{Outcome, Produced};
use crate::store::{Artifact, Store, STORE_SCHEMA};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Makes one item's files in `ctx.out`; returns its measurements (or Null).
pub type ComputeItem = fn(&ItemCtx) -> Result<serde_json::Value>;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ItemSpec {
    /// The stage kind whose `compute_item` makes this item.
    pub kind: String,
    /// Hashed: the item's key is blake3 of this (canonical JSON).
    pub preimage: serde_json::Value,
    /// Not hashed: how to compute it (store files, ids, texts).
    pub work: serde_json::Value,
}

impl ItemSpec {
    /// The kind, its version and the store schema are added to the preimage,
    /// so a changed implementation never finds an old item.
    pub fn new(kind: &StageKind, mut preimage: serde_json::Value, work: serde_json::Value) -> Self {
        if let serde_json::Value::Object(m) = &mut preimage {
            m.insert("item_of".into(), kind.kind.into());
            m.insert("version".into(), kind.version.into());
            m.insert("schema".into(), STORE_SCHEMA.into());
        }
        ItemSpec {
            kind: kind.kind.to_string(),
            preimage,
            work,
        }
    }

    pub fn key(&self) -> String {
        key_of(&self.preimage)
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).ctx(format!("create {}", dir.display()))?;
        }
        let text = serde_json::to_vec_pretty(self).expect("a spec serializes");
        std::fs::write(path, text).ctx(format!("write {}", path.display()))
    }

    pub fn read(path: &Path) -> Result<ItemSpec> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| input_err(path.display(), "spec", format!("cannot read: {e}")))?;
        serde_json::from_str(&text)
            .map_err(|e| input_err(path.display(), "spec", format!("not an item spec: {e}")))
    }
}

/// A file inside a published store object, named portably.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoreFile {
    pub object: String,
    pub path: String,
}

impl StoreFile {
    /// `file` must lie inside `artifact`'s directory.
    pub fn of(artifact: &Artifact, file: &Path) -> StoreFile {
        let rel = file
            .strip_prefix(&artifact.dir)
            .unwrap_or(file)
            .to_string_lossy()
            .to_string();
        StoreFile {
            object: artifact.key().to_string(),
            path: rel,
        }
    }
}

/// What computing one item sees.
pub struct ItemCtx<'a> {
    pub store: &'a Store,
    pub spec: &'a ItemSpec,
    /// Write the item's files here.
    pub out: &'a Path,
}

impl ItemCtx<'_> {
    /// The spec's work, as the kind's own struct.
    pub fn work<T: DeserializeOwned>(&self) -> Result<T> {
        T::deserialize(&self.spec.work).map_err(|e| {
            input_err(
                format!("item {}", &self.spec.key()[..16]),
                "work",
                e.to_string(),
            )
        })
    }

    /// Where a store file named by the spec lies; its object must be published.
    pub fn file(&self, f: &StoreFile) -> Result<PathBuf> {
        match self.store.lookup(&f.object)? {
            Some(a) => Ok(a.path(&f.path)),
            None => Err(input_err(
                format!("item {}", &self.spec.key()[..16]),
                "work",
                format!("object {} is not in the store", f.object),
            )),
        }
    }
}

/// The item's object: looked up by key, or computed by `kind` and published.
pub fn compute(store: &Store, kind: &StageKind, spec: &ItemSpec) -> Result<(Artifact, Outcome)> {
    let origin = || format!("item {}", &spec.key()[..16]);
    if spec.kind != kind.kind {
        return Err(input_err(
            origin(),
            "kind",
            format!("'{}' given to stage kind '{}'", spec.kind, kind.kind),
        ));
    }
    let version = spec.preimage.get("version").and_then(|v| v.as_u64());
    if version != Some(kind.version as u64) {
        return Err(input_err(
            origin(),
            "preimage.version",
            format!(
                "{version:?}, but this kvlab's '{}' is version {}",
                kind.kind, kind.version
            ),
        ));
    }
    let Some(make) = kind.compute_item else {
        return Err(input_err(
            origin(),
            "kind",
            format!("stage kind '{}' has no items", kind.kind),
        ));
    };
    let stage = format!("{}/item", kind.kind);
    store.get_or_compute(&stage, &spec.preimage, false, |dir| {
        let measurements = make(&ItemCtx {
            store,
            spec,
            out: dir,
        })?;
        Ok(Produced {
            measurements,
            ..Default::default()
        })
    })
}
