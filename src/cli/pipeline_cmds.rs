//! `kvlab run` and `kvlab status`.

use kvlab::dag::runner::{self, RunOptions};
use kvlab::dag::{status, Plan};
use kvlab::store::publish::Outcome;
use kvlab::store::Store;
use std::path::Path;

pub fn run(
    store: &Path,
    pipeline: &Path,
    stages: Vec<String>,
    with_deps: bool,
    force: bool,
    preset: Option<&str>,
) -> anyhow::Result<i32> {
    let plan = Plan::load(pipeline, preset)?;
    let store = Store::open(store)?;
    let reports = runner::run(
        &plan,
        &store,
        &RunOptions {
            stages,
            with_deps,
            force,
        },
    )?;
    let results = store.results_dir().join(&plan.name);
    for r in &reports {
        let what = match r.outcome {
            Outcome::Cached => "cached  ",
            Outcome::Computed => "computed",
        };
        println!(
            "{what} {:<16} {:<10} {:>8.2} s  {}",
            r.stage,
            r.kind,
            r.wall_s,
            &r.key[..16]
        );
    }
    let computed = reports
        .iter()
        .filter(|r| r.outcome == Outcome::Computed)
        .count();
    println!(
        "{} stage(s) computed, {} cached; results in {}",
        computed,
        reports.len() - computed,
        results.display()
    );
    Ok(0)
}

pub fn status(
    store: &Path,
    pipeline: &Path,
    preset: Option<&str>,
    json: bool,
) -> anyhow::Result<i32> {
    let plan = Plan::load(pipeline, preset)?;
    let store = Store::open(store)?;
    let st = status::status(&plan, &store)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&st)?);
        return Ok(0);
    }
    for s in &st {
        let why = if s.changes.is_empty() {
            String::new()
        } else {
            format!("  ({})", s.changes.join("; "))
        };
        println!("{:<8} {:<16} {:<10}{why}", s.state, s.stage, s.kind);
    }
    Ok(0)
}
