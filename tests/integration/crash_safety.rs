//! SIGKILL at random moments during `chunk`: never a published object without
//! its manifest; the next run succeeds and the store verifies clean.

use crate::sandbox::{assert_all_objects_complete, local_pipeline, stderr, stdout, Sandbox};
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

#[test]
fn sigkill_during_chunk_never_publishes_half_an_object() {
    let sb = Sandbox::new("kill");
    let pipeline = |i: usize| {
        local_pipeline("k", "", "").replace(
            "chunk_tokens = 256",
            &format!("chunk_tokens = {}", 120 + 7 * i),
        )
    };
    let p = sb.write("p.toml", &pipeline(0));
    let p = p.to_str().unwrap().to_string();
    // Fetch stages first, then time one full chunk run.
    let out = sb.kvlab(&["run", &p, "--stage", "model", "--stage", "essays"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let t0 = Instant::now();
    let out = sb.kvlab(&["run", &p, "--stage", "chunk"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let full = t0.elapsed();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut killed = 0;
    for i in 1..=20 {
        // A new chunk size each time, so every run has items left to compute.
        sb.write("p.toml", &pipeline(i));
        let mut child = sb
            .cmd(&["run", &p, "--stage", "chunk"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the run is inside the stage (its tmp dir exists), then
        // kill it after a random part of a full run's time.
        let pid = child.id();
        let started = Instant::now();
        while !in_stage(&sb, pid)
            && started.elapsed() < Duration::from_secs(30)
            && child.try_wait().unwrap().is_none()
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(
            full.mul_f64(rng.random_range(0.0..0.6))
                .min(Duration::from_secs(30)),
        );
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        if std::os::unix::process::ExitStatusExt::signal(&status) == Some(9) {
            killed += 1;
        }
        assert_all_objects_complete(&sb);
        let rerun = sb.kvlab(&["run", &p, "--stage", "chunk"]);
        assert!(
            rerun.status.success(),
            "rerun {i} failed: {}",
            stderr(&rerun)
        );
        let verify = sb.kvlab(&["verify"]);
        assert_eq!(
            verify.status.code(),
            Some(0),
            "verify after kill {i}: {}",
            stdout(&verify)
        );
    }
    eprintln!("{killed} of 20 runs were killed inside the chunk stage");
    // The kills must land while chunk runs, not after it finished.
    assert!(
        killed >= 12,
        "only {killed} of 20 runs were still running when killed"
    );
}

/// Whether process `pid` has an object in the making under tmp/.
fn in_stage(sb: &Sandbox, pid: u32) -> bool {
    let suffix = format!(".{pid}");
    std::fs::read_dir(sb.store().join("tmp"))
        .map(|rd| {
            rd.flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(&suffix))
        })
        .unwrap_or(false)
}
