//! Re-hash every published file against its manifest.

use super::hashing::file_blake3;
use super::manifest::MANIFEST;
use super::Store;
use crate::error::{IoContext, Result};
use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(Debug, Default)]
pub struct VerifyReport {
    pub objects: usize,
    pub files: usize,
    /// (file, reason)
    pub corrupt: Vec<(PathBuf, String)>,
    /// Keys removed by `--repair`.
    pub removed: Vec<String>,
}

impl Store {
    pub fn verify(&self, repair: bool) -> Result<VerifyReport> {
        let _lock = self.lock_shared()?;
        let mut report = VerifyReport::default();
        let mut bad_keys = BTreeSet::new();
        let mut item_parents: Vec<(String, Vec<String>)> = Vec::new();
        for key in self.keys()? {
            report.objects += 1;
            let manifest = match self.lookup(&key) {
                Ok(Some(a)) => a.manifest,
                Ok(None) => continue,
                Err(e) => {
                    report
                        .corrupt
                        .push((self.object_dir(&key).join(MANIFEST), e.to_string()));
                    bad_keys.insert(key);
                    continue;
                }
            };
            let dir = self.object_dir(&key);
            for out in &manifest.outputs {
                report.files += 1;
                let path = dir.join(&out.path);
                let reason = match std::fs::metadata(&path) {
                    Err(_) => Some("missing".to_string()),
                    Ok(m) if m.len() != out.bytes => {
                        Some(format!("size {} != {}", m.len(), out.bytes))
                    }
                    Ok(_) => match file_blake3(&path) {
                        Ok(h) if h == out.blake3 => None,
                        Ok(_) => Some("blake3 mismatch".to_string()),
                        Err(e) => Some(e.to_string()),
                    },
                };
                if let Some(r) = reason {
                    report.corrupt.push((path, r));
                    bad_keys.insert(key.clone());
                }
            }
            if !manifest.items.is_empty() {
                item_parents.push((key.clone(), manifest.items.clone()));
            }
        }
        if repair {
            // An artifact made of a corrupt item goes too, so a rerun rebuilds both.
            loop {
                let before = bad_keys.len();
                for (parent, items) in &item_parents {
                    if items.iter().any(|i| bad_keys.contains(i)) {
                        bad_keys.insert(parent.clone());
                    }
                }
                if bad_keys.len() == before {
                    break;
                }
            }
            for key in bad_keys {
                let dir = self.object_dir(&key);
                std::fs::remove_dir_all(&dir).ctx(format!("remove {}", dir.display()))?;
                report.removed.push(key);
            }
        }
        Ok(report)
    }
}
