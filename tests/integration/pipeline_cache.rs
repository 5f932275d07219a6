//! The store and runner end to end on the real tokenizer and essays: caching,
//! staleness, verification, gc, concurrency, and the Parquet read by duckdb
//! and polars.

use crate::sandbox::{count_lines, local_pipeline, run_ok, stderr, stdout, test_python, Sandbox};

const STAGES: &[&str] = &["model", "essays", "chunk", "tasks", "analyze", "plot"];

#[test]
fn rerun_is_a_no_op_and_one_param_reruns_one_stage() {
    let sb = Sandbox::new("cache");
    let p = sb.write("p.toml", &local_pipeline("p", "", "width = 1000"));
    let p = p.to_str().unwrap();
    let first = run_ok(&sb, &["run", p]);
    for s in STAGES {
        assert_eq!(
            count_lines(&first, "computed", s),
            1,
            "{s} not computed: {first}"
        );
    }
    let second = run_ok(&sb, &["run", p]);
    assert!(
        !second.contains("computed "),
        "second run computed something: {second}"
    );
    for s in STAGES {
        assert_eq!(count_lines(&second, "cached", s), 1, "{second}");
    }

    // One parameter of plot changes: status names it first, run recomputes only plot.
    sb.write("p.toml", &local_pipeline("p", "", "width = 900"));
    let st = run_ok(&sb, &["status", p]);
    let plot_line = st
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("plot"))
        .expect("plot in status");
    assert!(plot_line.starts_with("stale"), "{st}");
    assert!(
        plot_line.contains("(param width: 1000 -> 900"),
        "status does not name the parameter first: {plot_line}"
    );
    for s in &STAGES[..5] {
        let l = st
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(s))
            .unwrap();
        assert!(l.starts_with("cached"), "{st}");
    }
    let json = run_ok(&sb, &["status", p, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v.as_array()
            .unwrap()
            .iter()
            .filter(|s| s["state"] == "stale")
            .count(),
        1
    );
    let third = run_ok(&sb, &["run", p]);
    assert_eq!(count_lines(&third, "computed", "plot"), 1, "{third}");
    assert_eq!(third.matches("computed ").count(), 1, "{third}");

    // gc keeps what results/ reaches (the new plot) and drops the old plot.
    let gc = run_ok(&sb, &["gc", "--dry-run"]);
    assert!(gc.contains("would delete 1 objects"), "{gc}");
    run_ok(&sb, &["gc"]);
    let again = run_ok(&sb, &["run", p]);
    assert!(
        !again.contains("computed "),
        "gc removed something live: {again}"
    );
}

#[test]
fn stage_selection_needs_upstream_or_with_deps() {
    let sb = Sandbox::new("select");
    let p = sb.write("p.toml", &local_pipeline("p", "", ""));
    let p = p.to_str().unwrap();
    let out = sb.kvlab(&["run", p, "--stage", "chunk"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--with-deps"), "{}", stderr(&out));
    let ran = run_ok(&sb, &["run", p, "--stage", "chunk", "--with-deps"]);
    assert_eq!(count_lines(&ran, "computed", "chunk"), 1);
    assert_eq!(count_lines(&ran, "computed", "tasks"), 0, "{ran}");
    let forced = run_ok(&sb, &["run", p, "--stage", "chunk", "--force"]);
    assert_eq!(count_lines(&forced, "computed", "chunk"), 1, "{forced}");
}

#[test]
fn flipped_byte_is_found_and_repaired() {
    let sb = Sandbox::new("verify");
    let p = sb.write("p.toml", &local_pipeline("p", "", ""));
    let p = p.to_str().unwrap();
    run_ok(&sb, &["run", p]);
    let clean = run_ok(&sb, &["verify"]);
    assert!(clean.contains(" 0 corrupt"), "{clean}");
    let victim = sb.result("p", "chunk").join("chunks.parquet");
    let victim = std::fs::canonicalize(victim).unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&victim, &bytes).unwrap();
    let out = sb.kvlab(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("corrupt: {}", victim.display()))
            || text.contains("chunks.parquet (blake3 mismatch)"),
        "{text}"
    );
    assert!(run_ok(&sb, &["verify", "--repair"]).contains("removed:"));
    let rerun = run_ok(&sb, &["run", p]);
    assert_eq!(count_lines(&rerun, "computed", "chunk"), 1, "{rerun}");
    assert!(run_ok(&sb, &["verify"]).contains(" 0 corrupt"));
}

#[test]
fn concurrent_runs_compute_each_key_once() {
    let sb = Sandbox::new("concurrent");
    let p = sb.write("p.toml", &local_pipeline("p", "", ""));
    let p = p.to_str().unwrap();
    let a = sb
        .cmd(&["run", p])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let b = sb
        .cmd(&["run", p])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (pa, pb) = (a.id(), b.id());
    let (oa, ob) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(oa.status.success(), "{}", stderr(&oa));
    assert!(ob.status.success(), "{}", stderr(&ob));
    let (sa, sbo) = (stdout(&oa), stdout(&ob));
    for s in STAGES {
        let n = count_lines(&sa, "computed", s) + count_lines(&sbo, "computed", s);
        assert_eq!(n, 1, "stage {s} computed {n} times:\n{sa}\n{sbo}");
    }
    // Every manifest has exactly one writer, one of the two processes.
    for o in sb.objects() {
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(o.join("manifest.json")).unwrap()).unwrap();
        let pid = m["provenance"]["pid"].as_u64().unwrap() as u32;
        assert!(pid == pa || pid == pb, "writer {pid} is neither run");
    }
}

#[test]
fn parquet_is_read_by_duckdb_and_polars() {
    let sb = Sandbox::new("duckdb");
    let p = sb.write("p.toml", &local_pipeline("p", "", ""));
    run_ok(&sb, &["run", p.to_str().unwrap()]);
    let script = r#"
import duckdb, polars as pl
n_duck = duckdb.sql("select count(*), sum(n_tok) from 'results/p/chunk/chunks.parquet'").fetchone()
df = pl.read_parquet("results/p/chunk/chunks.parquet")
tasks = duckdb.sql("select task, count(*) from 'results/p/tasks/tasks.parquet' group by 1 order by 1").fetchall()
stats = pl.read_parquet("results/p/analyze/token_stats.parquet")
print(n_duck[0], n_duck[1], df.height, int(df["n_tok"].sum()), len(tasks), stats.height)
"#;
    let out = std::process::Command::new(test_python())
        .arg("-c")
        .arg(script)
        .current_dir(&sb.dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let nums: Vec<i64> = stdout(&out)
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(nums[0] > 12, "too few chunks: {nums:?}");
    assert_eq!(nums[0], nums[2], "duckdb and polars disagree on rows");
    assert_eq!(nums[1], nums[3], "duckdb and polars disagree on tokens");
    assert_eq!(nums[4], 7, "expected 7 task kinds: {nums:?}");
    assert!(nums[5] >= 1);
}

fn chunk_items(sb: &Sandbox) -> usize {
    sb.objects()
        .iter()
        .filter(|o| {
            std::fs::read_to_string(o.join("manifest.json"))
                .is_ok_and(|m| m.contains("\"stage\": \"chunk/item\""))
        })
        .count()
}

#[test]
fn one_more_document_costs_one_item_and_items_are_shared() {
    let sb = Sandbox::new("items");
    let p = sb.write("a.toml", &local_pipeline("a", "", ""));
    run_ok(
        &sb,
        &[
            "run",
            p.to_str().unwrap(),
            "--stage",
            "chunk",
            "--with-deps",
        ],
    );
    assert_eq!(chunk_items(&sb), 12);
    // Another pipeline over 13 documents: 12 items are reused, one is computed.
    let q = sb.write(
        "b.toml",
        &local_pipeline("b", "", "").replace("max_docs = 12", "max_docs = 13"),
    );
    let out = run_ok(
        &sb,
        &[
            "run",
            q.to_str().unwrap(),
            "--stage",
            "chunk",
            "--with-deps",
        ],
    );
    assert_eq!(count_lines(&out, "computed", "chunk"), 1, "{out}");
    assert_eq!(chunk_items(&sb), 13);
}
