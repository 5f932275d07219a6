//! `--executor slurm` against a real single-node Slurm (started by
//! tools/slurm_up.sh from .ci/run): identical bytes to a local run, a killed
//! array task named and resubmitted alone, and no job for a cached rerun.
//! Skipped with a message where no Slurm answers.

use crate::sandbox::{
    assert_all_objects_complete, files_but_manifests, local_pipeline, stderr, stdout, Sandbox,
};
use std::path::{Path, PathBuf};

fn slurm_up() -> bool {
    let ok = std::process::Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout).to_string();
            o.status.success() && ["idle", "mix", "alloc"].iter().any(|w| s.contains(w))
        })
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIP: no Slurm node answers `sinfo` (run tools/slurm_up.sh as root)");
    }
    ok
}

fn pipeline(sb: &Sandbox, docs: usize) -> String {
    let text = local_pipeline("s", "", "").replace("max_docs = 12", &format!("max_docs = {docs}"));
    sb.write("s.toml", &text).display().to_string()
}

fn chunk_args(p: &str) -> Vec<&str> {
    vec!["run", p, "--stage", "chunk", "--with-deps"]
}

fn job_records(store: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(store.join("jobs")) else {
        return vec![];
    };
    rd.map(|e| e.unwrap().path().join("job.json"))
        .filter(|p| p.exists())
        .collect()
}

#[test]
fn slurm_run_matches_local_survives_a_killed_task_and_skips_cached_work() {
    if !slurm_up() {
        return;
    }
    // (a) 40 chunk items as one array job: the same objects as a local run.
    let remote = Sandbox::new("slurm-a");
    let p = pipeline(&remote, 40);
    let mut args = chunk_args(&p);
    args.extend(["--executor", "slurm"]);
    let out = remote.kvlab(&args);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("with 40 item(s)"), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("items: 40 computed, 0 cached"),
        "{}",
        stdout(&out)
    );
    let local = Sandbox::new("slurm-l");
    let lp = pipeline(&local, 40);
    let out = local.kvlab(&chunk_args(&lp));
    assert!(out.status.success(), "{}", stderr(&out));
    let (a, b) = (
        files_but_manifests(&remote.store().join("objects")),
        files_but_manifests(&local.store().join("objects")),
    );
    assert_eq!(a.len(), b.len());
    assert!(a == b, "slurm and local objects differ");

    // (c) A rerun after success submits no job.
    let jobs = job_records(&remote.store()).len();
    let out = remote.kvlab(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("submitted"), "{}", stderr(&out));
    assert_eq!(job_records(&remote.store()).len(), jobs);

    // (b) One array task is cancelled while queued: the run fails naming it,
    // nothing partial is visible, and the rerun submits only that item.
    let sb = Sandbox::new("slurm-b");
    let p = pipeline(&sb, 40);
    let mut args = chunk_args(&p);
    args.extend(["--executor", "slurm", "--slurm", "max_concurrent=2"]);
    let child = sb
        .cmd(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let job = loop {
        let found = job_records(&sb.store()).into_iter().find_map(|f| {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(f).ok()?).ok()?;
            let id = v["slurm_job"].as_str()?.to_string();
            (!id.is_empty() && v["kind"] == "chunk").then_some(id)
        });
        if let Some(id) = found {
            break id;
        }
        assert!(std::time::Instant::now() < deadline, "no job submitted");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let st = sb.kvlab(&["status", &p]);
    assert!(
        stdout(&st).contains(&format!("in flight: slurm job {job}")),
        "{}",
        stdout(&st)
    );
    let cancel = std::process::Command::new("scancel")
        .arg(format!("{job}_39"))
        .output()
        .unwrap();
    assert!(cancel.status.success(), "{}", stderr(&cancel));
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "the run should fail: {err}");
    assert!(err.contains("1 of 40 item(s) failed"), "{err}");
    assert!(err.contains(&format!("job {job} task 39")), "{err}");
    assert!(err.contains("logs/39.out"), "{err}");
    assert_all_objects_complete(&sb);
    let out = sb.kvlab(
        &chunk_args(&p)
            .into_iter()
            .chain(["--executor", "slurm"])
            .collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("with 1 item(s)"), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("items: 1 computed, 39 cached"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn slurm_settings_and_a_missing_sbatch_are_input_errors() {
    let sb = Sandbox::new("slurm-bad");
    let p = pipeline(&sb, 2);
    let bad = sb.write(
        "bad.toml",
        &format!(
            "{}\n[executor.slurm]\nqueue = \"x\"\n",
            std::fs::read_to_string(&p).unwrap()
        ),
    );
    let out = sb.kvlab(&["run", bad.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("bad.toml") && err.contains("executor.slurm.queue"),
        "{err}"
    );
    let out = sb
        .cmd(&["run", &p, "--executor", "slurm"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("--executor") && err.contains("sbatch"),
        "{err}"
    );
    assert!(sb.objects().is_empty(), "nothing published");
}
