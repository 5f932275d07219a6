//! `kvlab run` and `kvlab status`.

use kvlab::dag::executor::Executor;
use kvlab::dag::item::ItemSpec;
use kvlab::dag::runner::{self, RunOptions};
use kvlab::dag::{slurm, slurm_config};
use kvlab::dag::{status, Plan};
use kvlab::device::DeviceSpec;
use kvlab::error::input_err;
use kvlab::store::publish::Outcome;
use kvlab::store::Store;
use std::path::Path;

/// The plan with `--device` set on every stage that has a `device`
/// parameter; a bad name is reported as the flag's.
fn load_plan(pipeline: &Path, preset: Option<&str>, device: Option<&str>) -> anyhow::Result<Plan> {
    let mut everywhere = toml::Table::new();
    if let Some(d) = device {
        DeviceSpec::parse(d).map_err(|m| input_err("command line", "--device", m))?;
        everywhere.insert("device".into(), d.into());
    }
    Ok(Plan::load_with(
        pipeline,
        preset,
        &everywhere,
        kvlab::stages::registry(),
    )?)
}

pub fn run(
    store: &Path,
    pipeline: &Path,
    preset: Option<&str>,
    device: Option<&str>,
    mut opts: RunOptions,
    slurm_settings: Option<Vec<String>>,
) -> anyhow::Result<i32> {
    let plan = load_plan(pipeline, preset, device)?;
    let cfg = slurm_config::resolve(
        Some((&plan.doc, &plan.file)),
        slurm_settings.as_deref().unwrap_or(&[]),
    )?;
    if slurm_settings.is_some() {
        slurm::check_available()?;
        opts.executor = Executor::Slurm(cfg);
    }
    let store = Store::open(store)?;
    let reports = runner::run(&plan, &store, &opts)?;
    let results = store.results_dir().join(&plan.name);
    for r in &reports {
        let what = match r.outcome {
            Outcome::Cached => "cached  ",
            Outcome::Computed => "computed",
        };
        let items = if r.items_computed + r.items_cached > 0 {
            format!(
                "  items: {} computed, {} cached",
                r.items_computed, r.items_cached
            )
        } else {
            String::new()
        };
        println!(
            "{what} {:<16} {:<10} {:>8.2} s  {}{items}",
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
    device: Option<&str>,
    json: bool,
) -> anyhow::Result<i32> {
    let plan = load_plan(pipeline, preset, device)?;
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
    for (job, state) in slurm::in_flight(&store)? {
        println!(
            "in flight: slurm job {} (stage {}, {} item(s)): {state}",
            job.slurm_job,
            job.stage,
            job.items.len()
        );
    }
    Ok(0)
}

/// `kvlab item`: one item, computed here and published; from `--spec FILE`
/// or from task `--index` of a Slurm `--job` directory.
pub fn item(
    store: &Path,
    spec_file: Option<&Path>,
    job: Option<(&Path, usize)>,
) -> anyhow::Result<i32> {
    let (spec, origin) = match (spec_file, job) {
        (Some(f), _) => (ItemSpec::read(f)?, f.display().to_string()),
        (None, Some((dir, i))) => (
            slurm::task_spec(dir, i)?,
            format!("{} task {i}", dir.display()),
        ),
        (None, None) => {
            return Err(kvlab::error::input_err(
                "command line",
                "item",
                "give --spec FILE, or --job DIR --index I",
            )
            .into())
        }
    };
    let Some(kind) = kvlab::stages::find(&spec.kind) else {
        return Err(kvlab::error::input_err(
            origin,
            "kind",
            format!("unknown stage kind '{}'", spec.kind),
        )
        .into());
    };
    let store = Store::open(store)?;
    let _lock = store.lock_shared()?;
    let (artifact, outcome) = kvlab::dag::item::compute(&store, kind.item_kind(), &spec)?;
    let what = match outcome {
        Outcome::Cached => "cached",
        Outcome::Computed => "computed",
    };
    println!("{what} {} {}", kind.kind, artifact.key());
    Ok(0)
}
