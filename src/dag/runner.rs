//! Running a plan: stages in topological order, each looked up by key or
//! computed once and published, then linked under `results/<pipeline>/`.

use super::executor::Executor;
use super::plan::{Plan, StageDecl};
pub use super::stage::StageReport;
use super::stage::{RunInfo, StageCtx};
use crate::error::{input_err, IoContext, Result};
use crate::store::hashing::stage_preimage;
use crate::store::publish::Produced;
use crate::store::{Artifact, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    /// Run only these stages (all when empty).
    pub stages: Vec<String>,
    /// Also run what the named stages depend on.
    pub with_deps: bool,
    /// Recompute the selected stages even when cached.
    pub force: bool,
    /// Also write every item spec here (see `StageCtx::spec_dir`).
    pub spec_dir: Option<std::path::PathBuf>,
    /// Who computes per-item work.
    pub executor: Executor,
}

/// The preimage of a stage given its upstream artifacts.
pub fn preimage(decl: &StageDecl, inputs: &BTreeMap<String, Artifact>) -> serde_json::Value {
    let digests: serde_json::Map<String, serde_json::Value> = inputs
        .iter()
        .map(|(role, a)| (role.clone(), a.manifest.content_digest().into()))
        .collect();
    stage_preimage(
        decl.kind.kind,
        decl.kind.version,
        decl.params.to_json(decl.kind.unhashed),
        digests,
    )
}

pub fn run(plan: &Plan, store: &Store, opts: &RunOptions) -> Result<Vec<StageReport>> {
    let named: BTreeSet<String> = opts.stages.iter().cloned().collect();
    for n in &named {
        if plan.stage(n).is_none() {
            let have: Vec<&str> = plan.stages.iter().map(|s| s.name.as_str()).collect();
            return Err(input_err(
                plan.file.display(),
                format!("--stage {n}"),
                format!("no such stage (have: {})", have.join(", ")),
            ));
        }
    }
    let selected = if named.is_empty() {
        plan.stages.iter().map(|s| s.name.clone()).collect()
    } else if opts.with_deps {
        plan.with_upstream(&named)
    } else {
        named.clone()
    };
    let _store_lock = store.lock_shared()?;
    let mut done: BTreeMap<String, Artifact> = BTreeMap::new();
    let mut info = RunInfo {
        pipeline: plan.name.clone(),
        description: plan.description.clone(),
        file: plan.file.clone(),
        stages: Vec::new(),
    };
    for decl in &plan.stages {
        let mut inputs = BTreeMap::new();
        let mut missing = None;
        for (role, up) in &decl.inputs {
            match done.get(up) {
                Some(a) => {
                    inputs.insert(role.clone(), a.clone());
                }
                None => missing = Some(up.clone()),
            }
        }
        let run_it = selected.contains(&decl.name);
        if let Some(up) = missing {
            if run_it {
                return Err(input_err(plan.file.display(), format!("stages.{}.inputs", decl.name), format!("upstream stage '{up}' has no artifact in the store; run it first or pass --with-deps")));
            }
            continue;
        }
        let pre = preimage(decl, &inputs);
        if !run_it {
            // Not selected: usable only if already cached.
            if let Some(a) = store.lookup(&crate::store::hashing::key_of(&pre))? {
                done.insert(decl.name.clone(), a);
            }
            continue;
        }
        let start = std::time::Instant::now();
        tracing::info!(stage = %decl.name, kind = decl.kind.kind, "start");
        let mut item_counts = (0, 0);
        let (artifact, outcome) =
            store.get_or_compute(decl.kind.kind, &pre, opts.force, |dir| {
                let mut ctx = StageCtx::new(&decl.params, &inputs, dir, store, decl.kind, &info);
                ctx.spec_dir = opts.spec_dir.as_deref();
                ctx.executor = &opts.executor;
                (decl.kind.run)(&ctx)?;
                let (items, computed, cached) = ctx.take_items();
                item_counts = (computed, cached);
                Ok(Produced {
                    inputs: inputs.values().map(|a| a.key().to_string()).collect(),
                    items,
                    ..Default::default()
                })
            })?;
        link_result(store, &plan.name, &decl.name, &artifact.dir)?;
        info.stages.push(StageReport {
            stage: decl.name.clone(),
            kind: decl.kind.kind.to_string(),
            key: artifact.key().to_string(),
            outcome,
            wall_s: start.elapsed().as_secs_f64(),
            items_computed: item_counts.0,
            items_cached: item_counts.1,
        });
        done.insert(decl.name.clone(), artifact);
    }
    Ok(info.stages)
}

/// `results/<pipeline>/<stage>` -> the object, as a relative symlink swapped in atomically.
fn link_result(store: &Store, pipeline: &str, stage: &str, object: &Path) -> Result<()> {
    let dir = store.results_dir().join(pipeline);
    std::fs::create_dir_all(&dir).ctx(format!("create {}", dir.display()))?;
    let object = std::path::absolute(object).ctx("absolute path")?;
    let target = relative_to(&object, &dir);
    let link = dir.join(stage);
    if std::fs::read_link(&link).ok().as_deref() == Some(target.as_path()) {
        return Ok(());
    }
    let tmp = dir.join(format!(".{stage}.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&target, &tmp).ctx(format!("link {}", tmp.display()))?;
    std::fs::rename(&tmp, &link).ctx(format!("link {}", link.display()))
}

fn relative_to(target: &Path, from_dir: &Path) -> std::path::PathBuf {
    let t: Vec<_> = target.components().collect();
    let f: Vec<_> = from_dir.components().collect();
    let common = t.iter().zip(&f).take_while(|(a, b)| a == b).count();
    let mut out = std::path::PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    out
}
