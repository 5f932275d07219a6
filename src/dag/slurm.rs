//! Running a stage's missing items as one Slurm array job over a shared store.
//!
//! The runner writes each missing item's spec under
//! `<store>/jobs/<job dir>/specs/<index>.json` and submits
//! `sbatch --array=0-(N-1)[%M] --wait`; task `i` runs
//! `kvlab --store <store> item --job <job dir> --index i`, which computes and
//! publishes through the store exactly as the local executor does (temp dir
//! on the store's filesystem, manifest last, rename; one lock file per key).
//! When sbatch returns, the store itself says which items exist: any that
//! do not are named with their job id, task id and log.

use super::item::ItemSpec;
use super::slurm_config::SlurmConfig;
use crate::error::{input_err, other, IoContext, Result};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What `<job dir>/job.json` records, for `kvlab status` and post-mortems.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    pub stage: String,
    pub kind: String,
    pub slurm_job: String,
    /// Item keys, by array index.
    pub items: Vec<String>,
    pub finished: bool,
}

/// `sbatch` must be on PATH for `--executor slurm`.
pub fn check_available() -> Result<()> {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join("sbatch").is_file()))
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(input_err(
            "command line",
            "--executor",
            "slurm: sbatch is not on PATH",
        ))
    }
}

pub fn jobs_dir(store: &Store) -> PathBuf {
    store.root().join("jobs")
}

/// Submit `specs` (all missing from the store) as one array job and wait.
pub fn run_array(cfg: &SlurmConfig, store: &Store, stage: &str, specs: &[&ItemSpec]) -> Result<()> {
    let store_root = std::path::absolute(store.root()).ctx("absolute store path")?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let job_dir = jobs_dir(store).join(format!("{stage}-{stamp}-{}", std::process::id()));
    for (i, spec) in specs.iter().enumerate() {
        spec.write(&job_dir.join("specs").join(format!("{i}.json")))?;
    }
    std::fs::create_dir_all(job_dir.join("logs")).ctx("create job logs dir")?;
    let exe = std::env::current_exe().ctx("locate the kvlab binary")?;
    let script = job_dir.join("task.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n# One array task: one item of stage {stage}.\nexec '{}' --store '{}' item --job '{}' --index \"$SLURM_ARRAY_TASK_ID\"\n",
            exe.display(),
            store_root.display(),
            job_dir.display()
        ),
    )
    .ctx(format!("write {}", script.display()))?;
    let mut record = JobRecord {
        stage: stage.to_string(),
        kind: specs[0].kind.clone(),
        slurm_job: String::new(),
        items: specs.iter().map(|s| s.key()).collect(),
        finished: false,
    };
    let mut cmd = Command::new("sbatch");
    cmd.args(sbatch_args(cfg, stage, specs.len(), &job_dir))
        .arg(&script)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().ctx("run sbatch")?;
    // --parsable prints the job id at submission; --wait then blocks until the end.
    let mut first = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out)
            .read_line(&mut first)
            .ctx("read sbatch output")?;
    }
    record.slurm_job = first.trim().split(';').next().unwrap_or("").to_string();
    write_record(&job_dir, &record)?;
    eprintln!(
        "slurm: stage {stage}: submitted job {} with {} item(s); logs in {}",
        record.slurm_job,
        specs.len(),
        job_dir.join("logs").display()
    );
    let output = child.wait_with_output().ctx("wait for sbatch")?;
    record.finished = true;
    write_record(&job_dir, &record)?;
    if record.slurm_job.is_empty() {
        return Err(other(format!(
            "slurm: sbatch refused the job for stage {stage}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let mut failed = Vec::new();
    for (i, key) in record.items.iter().enumerate() {
        if store.lookup(key)?.is_none() {
            failed.push(format!(
                "item {} (job {} task {i}, log {})",
                &key[..16],
                record.slurm_job,
                job_dir.join("logs").join(format!("{i}.out")).display()
            ));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(other(format!(
            "slurm: stage {stage}: {} of {} item(s) failed: {}",
            failed.len(),
            specs.len(),
            failed.join("; ")
        )))
    }
}

fn sbatch_args(cfg: &SlurmConfig, stage: &str, n: usize, job_dir: &Path) -> Vec<String> {
    let mut a = vec![
        "--parsable".to_string(),
        "--wait".to_string(),
        format!("--job-name=kvlab-{stage}"),
        format!("--output={}", job_dir.join("logs").join("%a.out").display()),
        format!("--cpus-per-task={}", cfg.cpus_per_task),
    ];
    a.push(if cfg.max_concurrent > 0 {
        format!("--array=0-{}%{}", n - 1, cfg.max_concurrent)
    } else {
        format!("--array=0-{}", n - 1)
    });
    for (flag, v) in [
        ("--partition", &cfg.partition),
        ("--account", &cfg.account),
        ("--time", &cfg.time),
        ("--mem", &cfg.mem),
        ("--gres", &cfg.gres),
    ] {
        if !v.is_empty() {
            a.push(format!("{flag}={v}"));
        }
    }
    a.extend(cfg.extra_args.iter().cloned());
    a
}

fn write_record(job_dir: &Path, r: &JobRecord) -> Result<()> {
    let p = job_dir.join("job.json");
    let text = serde_json::to_vec_pretty(r).expect("job record serializes");
    std::fs::write(&p, text).ctx(format!("write {}", p.display()))
}

/// The spec of array task `index` of a job directory.
pub fn task_spec(job_dir: &Path, index: usize) -> Result<ItemSpec> {
    ItemSpec::read(&job_dir.join("specs").join(format!("{index}.json")))
}

/// Jobs submitted and not finished, with Slurm's word on their state.
pub fn in_flight(store: &Store) -> Result<Vec<(JobRecord, String)>> {
    let mut out = Vec::new();
    for dir in crate::store::read_dir_sorted(&jobs_dir(store))? {
        let Ok(text) = std::fs::read_to_string(dir.join("job.json")) else {
            continue;
        };
        let Ok(r) = serde_json::from_str::<JobRecord>(&text) else {
            continue;
        };
        if r.finished || r.slurm_job.is_empty() {
            continue;
        }
        let state = Command::new("squeue")
            .args(["-h", "-j", &r.slurm_job, "-o", "%i %T"])
            .output()
            .ok()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .replace('\n', ", ")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "not in squeue (ended, or the runner died)".into());
        out.push((r, state));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbatch_flags_follow_the_config() {
        let cfg = SlurmConfig {
            partition: "gpu".into(),
            account: String::new(),
            time: "10:00".into(),
            cpus_per_task: 2,
            mem: String::new(),
            gres: "gpu:1".into(),
            max_concurrent: 3,
            extra_args: vec!["--qos=short".into()],
        };
        let a = sbatch_args(&cfg, "chunk", 40, Path::new("/s/jobs/j"));
        for want in [
            "--array=0-39%3",
            "--partition=gpu",
            "--time=10:00",
            "--gres=gpu:1",
            "--cpus-per-task=2",
            "--qos=short",
            "--output=/s/jobs/j/logs/%a.out",
        ] {
            assert!(a.contains(&want.to_string()), "{want} not in {a:?}");
        }
        assert!(!a.iter().any(|x| x.starts_with("--account")), "{a:?}");
    }
}
