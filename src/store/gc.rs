//! Garbage collection: keep what `results/` links and pins reach, following
//! manifests' inputs and items; delete the rest.

use super::{read_dir_sorted, Store};
use crate::error::{IoContext, Result};
use std::collections::BTreeSet;

#[derive(Debug, Default)]
pub struct GcReport {
    pub kept: usize,
    pub deleted: Vec<String>,
    pub bytes_freed: u64,
}

impl Store {
    /// Keys named by `results/<pipeline>/<stage>` links and `pins/`.
    pub fn roots(&self) -> Result<BTreeSet<String>> {
        let mut roots = BTreeSet::new();
        for pipeline in read_dir_sorted(&self.results_dir())? {
            for link in read_dir_sorted(&pipeline)? {
                if let Ok(target) = std::fs::read_link(&link) {
                    if let Some(k) = target.file_name().and_then(|n| n.to_str()) {
                        roots.insert(k.to_string());
                    }
                }
            }
        }
        for pin in read_dir_sorted(&self.root.join("pins"))? {
            let key = std::fs::read_to_string(&pin).ctx(format!("read {}", pin.display()))?;
            roots.insert(key.trim().to_string());
        }
        Ok(roots)
    }

    pub fn gc(&self, dry_run: bool) -> Result<GcReport> {
        let _lock = self.lock_exclusive()?;
        let mut live = BTreeSet::new();
        let mut stack: Vec<String> = self.roots()?.into_iter().collect();
        while let Some(key) = stack.pop() {
            if key.len() < 2 || !live.insert(key.clone()) {
                continue;
            }
            if let Ok(Some(a)) = self.lookup(&key) {
                stack.extend(a.manifest.inputs.iter().cloned());
                stack.extend(a.manifest.items.iter().cloned());
            }
        }
        let mut report = GcReport::default();
        for shard in read_dir_sorted(&self.root.join("objects"))? {
            for obj in read_dir_sorted(&shard)? {
                let key = obj
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("")
                    .to_string();
                if live.contains(&key) {
                    report.kept += 1;
                    continue;
                }
                report.bytes_freed += dir_bytes(&obj);
                if !dry_run {
                    std::fs::remove_dir_all(&obj).ctx(format!("remove {}", obj.display()))?;
                    let _ =
                        std::fs::remove_file(self.root.join("locks").join(format!("{key}.lock")));
                }
                report.deleted.push(key);
            }
        }
        if !dry_run {
            // With the exclusive lock held no runner is writing: tmp/ is garbage.
            for t in read_dir_sorted(&self.root.join("tmp"))? {
                let _ = std::fs::remove_dir_all(&t).or_else(|_| std::fs::remove_file(&t));
            }
        }
        Ok(report)
    }
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    super::publish::walk_files(dir)
        .map(|fs| {
            fs.iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
