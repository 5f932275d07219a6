//! `kvlab status`: per stage, cached / stale / missing, and for stale stages
//! which part of the key changed against the artifact `results/` points at.

use super::plan::Plan;
use super::runner::preimage;
use crate::error::Result;
use crate::store::hashing::key_of;
use crate::store::{Artifact, Store};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct StageStatus {
    pub stage: String,
    pub kind: String,
    /// "cached", "stale" or "missing"
    pub state: String,
    pub key: Option<String>,
    /// Why it is stale: changed parameters by name, changed inputs by role.
    pub changes: Vec<String>,
}

pub fn status(plan: &Plan, store: &Store) -> Result<Vec<StageStatus>> {
    let mut done: BTreeMap<String, Artifact> = BTreeMap::new();
    let mut out = Vec::new();
    for decl in &plan.stages {
        let mut inputs = BTreeMap::new();
        let mut unavailable = Vec::new();
        for (role, up) in &decl.inputs {
            match done.get(up) {
                Some(a) => {
                    inputs.insert(role.clone(), a.clone());
                }
                None => unavailable.push((role.clone(), up.clone())),
            }
        }
        let current = preimage(decl, &inputs);
        let key = unavailable.is_empty().then(|| key_of(&current));
        if let Some(k) = &key {
            if let Some(a) = store.lookup(k)? {
                done.insert(decl.name.clone(), a);
                out.push(StageStatus {
                    stage: decl.name.clone(),
                    kind: decl.kind.kind.into(),
                    state: "cached".into(),
                    key: key.clone(),
                    changes: vec![],
                });
                continue;
            }
        }
        let link = store.results_dir().join(&plan.name).join(&decl.name);
        let previous = std::fs::read_link(&link)
            .ok()
            .and_then(|t| t.file_name().map(|n| n.to_string_lossy().to_string()))
            .and_then(|k| store.lookup(&k).ok().flatten());
        let (state, changes) = match previous {
            Some(prev) => {
                let mut changes = diff(&prev.manifest.preimage, &current);
                for (role, up) in &unavailable {
                    changes.push(format!("input {role}: upstream '{up}' is not cached"));
                }
                ("stale", changes)
            }
            None => ("missing", vec![]),
        };
        out.push(StageStatus {
            stage: decl.name.clone(),
            kind: decl.kind.kind.into(),
            state: state.into(),
            key,
            changes,
        });
    }
    Ok(out)
}

/// Human-readable differences between two preimages; parameters first.
fn diff(old: &serde_json::Value, new: &serde_json::Value) -> Vec<String> {
    let mut changes = Vec::new();
    let empty = serde_json::Map::new();
    let obj = |v: &serde_json::Value, k: &str| {
        v.get(k)
            .and_then(|x| x.as_object())
            .cloned()
            .unwrap_or_else(|| empty.clone())
    };
    let (op, np) = (obj(old, "params"), obj(new, "params"));
    for (name, nv) in &np {
        match op.get(name) {
            Some(ov) if ov == nv => {}
            Some(ov) => changes.push(format!("param {name}: {ov} -> {nv}")),
            None => changes.push(format!("param {name}: new, = {nv}")),
        }
    }
    for name in op.keys().filter(|k| !np.contains_key(*k)) {
        changes.push(format!("param {name}: removed"));
    }
    let (oi, ni) = (obj(old, "inputs"), obj(new, "inputs"));
    for (role, nd) in &ni {
        if oi.get(role) != Some(nd) {
            let short = |v: Option<&serde_json::Value>| {
                v.and_then(|d| d.as_str())
                    .map(|s| s[..12.min(s.len())].to_string())
                    .unwrap_or_else(|| "none".into())
            };
            changes.push(format!(
                "input {role}: digest {} -> {}",
                short(oi.get(role)),
                short(Some(nd))
            ));
        }
    }
    for field in ["kind", "version", "schema", "device"] {
        if old.get(field) != new.get(field) {
            changes.push(format!(
                "{field}: {} -> {}",
                old.get(field).unwrap_or(&serde_json::Value::Null),
                new.get(field).unwrap_or(&serde_json::Value::Null)
            ));
        }
    }
    changes
}
