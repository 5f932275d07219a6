//! Items as data: an item computed from its spec in a separate `kvlab item`
//! process is byte-identical to the one the runner computes in-process, and a
//! generate stage costs one item per new prompt.

use crate::sandbox::{
    count_lines, files_but_manifests, local_pipeline, run_ok, sha256, smollm2_gguf, stderr, Sandbox,
};
use std::path::{Path, PathBuf};

fn object_dir(sb: &Sandbox, key: &str) -> PathBuf {
    sb.store().join("objects").join(&key[..2]).join(key)
}

/// The specs written by `--write-specs`, whose kind is `kind`.
fn specs_of(dir: &Path, kind: &str) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            v["kind"] == kind
        })
        .map(|p| (p.file_stem().unwrap().to_string_lossy().to_string(), p))
        .collect();
    out.sort();
    out
}

/// Remove the in-process item, recompute it with `kvlab item`, compare bytes.
fn recompute_in_another_process(sb: &Sandbox, key: &str, spec: &Path) {
    let obj = object_dir(sb, key);
    let before = files_but_manifests(&obj);
    assert!(!before.is_empty(), "item {key} has no files");
    let manifest_before: serde_json::Value =
        serde_json::from_slice(&std::fs::read(obj.join("manifest.json")).unwrap()).unwrap();
    std::fs::remove_dir_all(&obj).unwrap();
    let out = run_ok(sb, &["item", "--spec", spec.to_str().unwrap()]);
    assert!(out.starts_with("computed"), "{out}");
    assert!(out.contains(key), "{out}");
    assert_eq!(
        files_but_manifests(&obj),
        before,
        "item {key} differs across processes"
    );
    let manifest_after: serde_json::Value =
        serde_json::from_slice(&std::fs::read(obj.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest_after["outputs"], manifest_before["outputs"]);
    assert_eq!(manifest_after["preimage"], manifest_before["preimage"]);
    assert_ne!(
        manifest_after["provenance"]["pid"], manifest_before["provenance"]["pid"],
        "the item was not recomputed by another process"
    );
    // Computing it again finds it.
    let again = run_ok(sb, &["item", "--spec", spec.to_str().unwrap()]);
    assert!(again.starts_with("cached"), "{again}");
}

#[test]
fn chunk_item_from_its_spec_in_another_process_is_byte_identical() {
    let sb = Sandbox::new("itemspec");
    let p = sb.write("p.toml", &local_pipeline("p", "", ""));
    let specs = sb.dir.join("specs");
    let out = run_ok(
        &sb,
        &[
            "run",
            p.to_str().unwrap(),
            "--stage",
            "chunk",
            "--with-deps",
            "--write-specs",
            specs.to_str().unwrap(),
        ],
    );
    assert!(out.contains("items: 12 computed, 0 cached"), "{out}");
    let chunk_specs = specs_of(&specs, "chunk");
    assert_eq!(chunk_specs.len(), 12);
    let (key, spec) = &chunk_specs[3];
    recompute_in_another_process(&sb, key, spec);

    // A spec naming an object the store lacks is one clear line, exit 2.
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(spec).unwrap()).unwrap();
    v["work"]["document"]["object"] = "00".repeat(32).into();
    v["preimage"]["document"] = "changed".into();
    let bad = sb.write("bad-spec.json", &v.to_string());
    let out = sb.kvlab(&["item", "--spec", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not in the store"),
        "{}",
        stderr(&out)
    );
}

fn generate_pipeline(max_prompts: usize, max_new_tokens: usize) -> String {
    let mt = std::env::var("KVLAB_MTBENCH").expect("KVLAB_MTBENCH: run with `make test`");
    let mtsha = sha256(&mt);
    let base = local_pipeline("g", "", "");
    format!(
        r#"{base}
[stages.prompts]
kind = "fetch"
file = "{mt}"
sha256 = "{mtsha}"
output = "questions.jsonl"

[stages.generate]
kind = "generate"
inputs = {{ model = "model", prompts = "prompts" }}
max_prompts = {max_prompts}
max_new_tokens = {max_new_tokens}
"#
    )
}

#[test]
fn generate_caches_one_item_per_prompt_and_items_replay_in_another_process() {
    let _ = smollm2_gguf();
    let sb = Sandbox::new("genitems");
    let p = sb.write("g.toml", &generate_pipeline(2, 5));
    let p = p.to_str().unwrap();
    let specs = sb.dir.join("specs");
    let first = run_ok(&sb, &["run", p, "--write-specs", specs.to_str().unwrap()]);
    assert!(
        first
            .lines()
            .any(|l| l.contains(" generate ") && l.contains("items: 2 computed, 0 cached")),
        "{first}"
    );
    let gen_specs = specs_of(&specs, "generate");
    assert_eq!(gen_specs.len(), 2);
    recompute_in_another_process(&sb, &gen_specs[1].0, &gen_specs[1].1);

    // One more prompt: one new item, the rest found; no chunk recomputed.
    sb.write("g.toml", &generate_pipeline(3, 5));
    let more = run_ok(&sb, &["run", p]);
    let line = more
        .lines()
        .find(|l| l.contains(" generate "))
        .expect("generate line");
    assert!(line.contains("items: 1 computed, 2 cached"), "{more}");
    assert_eq!(count_lines(&more, "computed", "chunk"), 0, "{more}");

    // A decoding parameter changes: every generation again, still no chunk.
    sb.write("g.toml", &generate_pipeline(3, 6));
    let longer = run_ok(&sb, &["run", p]);
    let line = longer
        .lines()
        .find(|l| l.contains(" generate "))
        .expect("generate line");
    assert!(line.contains("items: 3 computed, 0 cached"), "{longer}");
    assert_eq!(count_lines(&longer, "cached", "chunk"), 1, "{longer}");
}
