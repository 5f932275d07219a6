//! Publishing: compute into `tmp/`, fsync, write the manifest last, rename
//! into `objects/`. A crash at any point leaves only garbage in `tmp/`.

use super::hashing::{file_blake3, key_of};
use super::manifest::{Manifest, OutputFile, Provenance, MANIFEST, STORE_SCHEMA};
use super::provenance::Clock;
use super::{fsync_dir, Artifact, Store};
use crate::error::{IoContext, Result};
use std::path::{Path, PathBuf};

/// What a computation reports besides its files.
#[derive(Debug, Default)]
pub struct Produced {
    pub inputs: Vec<String>,
    pub items: Vec<String>,
    /// Recorded in the manifest's provenance (see `Provenance::measurements`).
    pub measurements: serde_json::Value,
}

/// Whether `get_or_compute` found the object or made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Cached,
    Computed,
}

impl Store {
    /// The object for `preimage`: looked up, or computed once under the key's
    /// lock by `compute`, which writes its files into the directory it is given.
    /// With `force`, an existing object is recomputed and replaced.
    pub fn get_or_compute(
        &self,
        stage: &str,
        preimage: &serde_json::Value,
        force: bool,
        compute: impl FnOnce(&Path) -> Result<Produced>,
    ) -> Result<(Artifact, Outcome)> {
        let key = key_of(preimage);
        if !force {
            if let Some(a) = self.lookup(&key)? {
                return Ok((a, Outcome::Cached));
            }
        }
        let _lock = self.lock_key(&key)?;
        if !force {
            // Another process may have published while we waited for the lock.
            if let Some(a) = self.lookup(&key)? {
                return Ok((a, Outcome::Cached));
            }
        }
        let tmp = self
            .root
            .join("tmp")
            .join(format!("{key}.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).ctx(format!("create {}", tmp.display()))?;
        let clock = Clock::start();
        let result = compute(&tmp)
            .and_then(|produced| self.seal(&tmp, &key, stage, preimage, produced, &clock));
        let manifest = match result {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        let dest = self.object_dir(&key);
        let shard = dest.parent().expect("object dirs have a shard parent");
        std::fs::create_dir_all(shard).ctx(format!("create {}", shard.display()))?;
        if dest.exists() {
            // --force: move the old object aside, then drop it.
            let trash = self
                .root
                .join("tmp")
                .join(format!("{key}.{}.old", std::process::id()));
            std::fs::rename(&dest, &trash).ctx(format!("move aside {}", dest.display()))?;
            let _ = std::fs::remove_dir_all(&trash);
        }
        std::fs::rename(&tmp, &dest).ctx(format!("publish {}", dest.display()))?;
        fsync_dir(shard)?;
        Ok((
            Artifact {
                dir: dest,
                manifest,
            },
            Outcome::Computed,
        ))
    }

    /// Hash and fsync every file, then write the manifest (last).
    fn seal(
        &self,
        tmp: &Path,
        key: &str,
        stage: &str,
        preimage: &serde_json::Value,
        produced: Produced,
        clock: &Clock,
    ) -> Result<Manifest> {
        let mut outputs = Vec::new();
        for path in walk_files(tmp)? {
            let rel = path
                .strip_prefix(tmp)
                .expect("walk stays under tmp")
                .to_string_lossy()
                .to_string();
            if rel == MANIFEST {
                continue;
            }
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .ctx(format!("fsync {}", path.display()))?;
            let bytes = std::fs::metadata(&path)
                .ctx(format!("stat {}", path.display()))?
                .len();
            outputs.push(OutputFile {
                blake3: file_blake3(&path)?,
                path: rel,
                bytes,
            });
        }
        let manifest = Manifest {
            schema: STORE_SCHEMA,
            stage: stage.to_string(),
            key: key.to_string(),
            preimage: preimage.clone(),
            inputs: produced.inputs,
            items: produced.items,
            outputs,
            provenance: Provenance {
                measurements: produced.measurements,
                ..clock.finish()
            },
        };
        let path = tmp.join(MANIFEST);
        let text = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
        std::fs::write(&path, text).ctx(format!("write {}", path.display()))?;
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .ctx(format!("fsync {}", path.display()))?;
        fsync_dir(tmp)?;
        Ok(manifest)
    }
}

/// All regular files under `dir`, sorted, recursively.
pub fn walk_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for p in super::read_dir_sorted(&d)? {
            let meta = std::fs::symlink_metadata(&p).ctx(format!("stat {}", p.display()))?;
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}
