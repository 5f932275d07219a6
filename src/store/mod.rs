//! The content-addressed store.
//!
//! Layout under the store root (default `artifacts/`):
//! - `objects/<k[..2]>/<key>/` — a published object: its files and `manifest.json`.
//!   A manifest present means the object is complete.
//! - `tmp/<key>.<pid>/` — objects being written; renamed into `objects/` when done.
//! - `locks/<key>.lock` — one lock per key, so concurrent runs compute a key once.
//! - `store.lock` — shared by runners, exclusive for gc.
//! - `pins/<name>` — a key kept alive by gc whatever `results/` says.

pub mod gc;
pub mod hashing;
pub mod manifest;
mod provenance;
pub mod publish;
pub mod verify;

use crate::error::{IoContext, Result};
pub use manifest::{Manifest, OutputFile, Provenance, STORE_SCHEMA};
use std::fs::File;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// A published object.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl Artifact {
    pub fn key(&self) -> &str {
        &self.manifest.key
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Output files whose relative path ends with `suffix`, in manifest order.
    pub fn files_ending(&self, suffix: &str) -> Vec<PathBuf> {
        self.manifest
            .outputs
            .iter()
            .filter(|o| o.path.ends_with(suffix))
            .map(|o| self.dir.join(&o.path))
            .collect()
    }
}

impl Store {
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        for sub in ["objects", "tmp", "locks", "pins"] {
            let d = root.join(sub);
            std::fs::create_dir_all(&d).ctx(format!("create {}", d.display()))?;
        }
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `results/` sits beside the store directory.
    pub fn results_dir(&self) -> PathBuf {
        let abs = std::path::absolute(&self.root).unwrap_or_else(|_| self.root.clone());
        abs.parent().unwrap_or(Path::new(".")).join("results")
    }

    pub fn object_dir(&self, key: &str) -> PathBuf {
        self.root.join("objects").join(&key[..2]).join(key)
    }

    /// The published object for `key`, if complete.
    pub fn lookup(&self, key: &str) -> Result<Option<Artifact>> {
        let dir = self.object_dir(key);
        let path = dir.join(manifest::MANIFEST);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
                    crate::error::other(format!("corrupt manifest {}: {e}", path.display()))
                })?;
                Ok(Some(Artifact { dir, manifest }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).ctx(format!("read {}", path.display())),
        }
    }

    /// Every published key (directories holding a manifest).
    pub fn keys(&self) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let objects = self.root.join("objects");
        for shard in read_dir_sorted(&objects)? {
            for obj in read_dir_sorted(&shard)? {
                if obj.join(manifest::MANIFEST).exists() {
                    if let Some(name) = obj.file_name().and_then(|n| n.to_str()) {
                        keys.push(name.to_string());
                    }
                }
            }
        }
        Ok(keys)
    }

    /// Runners hold the store lock shared; gc holds it exclusively.
    pub fn lock_shared(&self) -> Result<File> {
        let f = self.open_lock_file(&self.root.join("store.lock"))?;
        f.lock_shared().ctx("lock store.lock")?;
        Ok(f)
    }

    pub fn lock_exclusive(&self) -> Result<File> {
        let f = self.open_lock_file(&self.root.join("store.lock"))?;
        f.lock().ctx("lock store.lock")?;
        Ok(f)
    }

    fn lock_key(&self, key: &str) -> Result<File> {
        let f = self.open_lock_file(&self.root.join("locks").join(format!("{key}.lock")))?;
        f.lock().ctx(format!("lock key {key}"))?;
        Ok(f)
    }

    fn open_lock_file(&self, path: &Path) -> Result<File> {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .ctx(format!("open {}", path.display()))
    }

    /// Keep `key` alive through gc under `name`.
    pub fn pin(&self, name: &str, key: &str) -> Result<()> {
        let p = self.root.join("pins").join(name);
        std::fs::write(&p, key).ctx(format!("write {}", p.display()))
    }
}

pub(crate) fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            for e in rd {
                out.push(e.ctx(format!("list {}", dir.display()))?.path());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).ctx(format!("list {}", dir.display())),
    }
    out.sort();
    Ok(out)
}

pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .ctx(format!("fsync {}", dir.display()))
}
