//! RAG KV fusion through the runner on the real model (issue 11's
//! acceptance): one new selector computes only its column, a second pipeline
//! sharing the chunks recomputes none of their KV, and a tampered or
//! truncated KV file in the store is detected, recomputed and counted, never
//! used (the answers equal those from the intact files).

use crate::sandbox::{run_ok, Sandbox, SMOLLM2_SHA256};
use kvlab::table::read_parquet;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The model and essays, or None (the test is skipped) when unset.
fn inputs() -> Option<(PathBuf, PathBuf)> {
    let (Ok(m), Ok(e)) = (
        std::env::var("KVLAB_SMOLLM2_GGUF"),
        std::env::var("KVLAB_ESSAYS_DIR"),
    ) else {
        eprintln!("SKIP: KVLAB_SMOLLM2_GGUF / KVLAB_ESSAYS_DIR unset (run with `make test`)");
        return None;
    };
    Some((
        std::path::absolute(m.trim()).unwrap(),
        std::path::absolute(e.trim()).unwrap(),
    ))
}

/// The opening paragraphs (about 1,000 characters) of the first `n` essays,
/// as a docs directory in the sandbox, and its listing sha256: few enough
/// tokens that every chunk is precomputed in seconds.
fn docs(sb: &Sandbox, name: &str, n: usize) -> (PathBuf, String) {
    let (_, essays) = inputs().unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(essays)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    let dir = sb.dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for f in files.iter().take(n) {
        let mut out = String::new();
        for para in std::fs::read_to_string(f).unwrap().split("\n\n") {
            if out.len() > 1000 {
                break;
            }
            out.push_str(para);
            out.push_str("\n\n");
        }
        std::fs::write(dir.join(f.file_name().unwrap()), out).unwrap();
    }
    let sha = kvlab::data::fetch::listing_sha256(&dir).unwrap();
    (dir, sha)
}

/// 64-token chunks of `docs`, three samples (a needle, a RULER needle, a
/// two-hop QA) of about 128 tokens, 2-token answers.
fn pipeline(name: &str, docs: &(PathBuf, String), methods: &str) -> String {
    let (model, _) = inputs().unwrap();
    format!(
        r#"name = "{name}"
[stages.model]
kind = "fetch"
file = "{model}"
sha256 = "{SMOLLM2_SHA256}"
output = "model.gguf"
[stages.essays]
kind = "fetch"
file = "{essays}"
sha256 = "{esha}"
output = "essays"
[stages.chunk]
kind = "chunk"
inputs = {{ model = "model", docs = "essays" }}
chunk_tokens = 64
[stages.tasks]
kind = "tasks"
inputs = {{ chunks = "chunk", model = "model" }}
needle_context_tokens = [128]
needle_depths = [0.5]
ruler_tasks = ["niah_single"]
ruler_context_tokens = [128]
ruler_samples = 1
qa_samples = 1
qa_docs = 2
[stages.precompute]
kind = "precompute"
inputs = {{ model = "model", chunks = "chunk" }}
[stages.fusion_eval]
kind = "fusion_eval"
inputs = {{ model = "model", tasks = "tasks", precompute = "precompute" }}
methods = {methods}
rates = [0.15]
max_new_tokens = 2
"#,
        model = model.display(),
        essays = docs.0.display(),
        esha = docs.1,
    )
}

const SAMPLES: usize = 3;

/// (computed, cached) from a stage's "items: N computed, M cached".
fn items(line: &str) -> (usize, usize) {
    let w: Vec<&str> = line.split_whitespace().collect();
    let at = w.iter().position(|x| *x == "items:").expect(line);
    (w[at + 1].parse().unwrap(), w[at + 3].parse().unwrap())
}

fn line<'a>(out: &'a str, stage: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(stage))
        .unwrap_or_else(|| panic!("no line for {stage}: {out}"))
}

/// (task, sample, method, metric) -> value, from fusion_eval's scores.
fn scores(dir: &Path) -> BTreeMap<(String, String, String, String), f64> {
    let df = read_parquet(&dir.join("scores.parquet")).unwrap();
    let s = |c: &str| df.column(c).unwrap().str().unwrap().clone();
    let (t, sa, m, me) = (s("task"), s("sample"), s("method"), s("metric"));
    let v = df.column("value").unwrap().f64().unwrap().clone();
    (0..df.height())
        .map(|i| {
            let k = [&t, &sa, &m, &me].map(|c| c.get(i).unwrap().to_string());
            (
                (k[0].clone(), k[1].clone(), k[2].clone(), k[3].clone()),
                v.get(i).unwrap(),
            )
        })
        .collect()
}

/// Objects whose manifest's preimage says `"method": method` (fusion items).
fn items_of(sb: &Sandbox, method: &str) -> Vec<PathBuf> {
    sb.objects()
        .into_iter()
        .filter(|o| {
            let text = std::fs::read_to_string(o.join("manifest.json")).unwrap_or_default();
            let m: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            m["stage"] == "fusion_eval/item"
                && m["preimage"]
                    .to_string()
                    .contains(&format!("\"method\":\"{method}\""))
        })
        .collect()
}

fn writable(p: &Path) {
    let mut perm = std::fs::metadata(p).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(p, perm).unwrap();
}

#[test]
fn ragkv_new_selector_is_one_column_shared_chunks_are_reused_and_bad_kv_is_recomputed() {
    if inputs().is_none() {
        return;
    }
    let sb = Sandbox::new("ragkv");
    let two = docs(&sb, "two", 2);
    let p = sb.write("a.toml", &pipeline("a", &two, r#"["vanilla", "full"]"#));
    let p = p.to_str().unwrap();
    let text = run_ok(&sb, &["run", p]);
    let (n_chunks, none) = items(line(&text, "precompute"));
    assert!(n_chunks >= 4 && none == 0, "{text}");
    let fe = format!("items: {} computed, 0 cached", 2 * SAMPLES);
    assert!(line(&text, "fusion_eval").contains(&fe), "{text}");
    let dir = sb.result("a", "fusion_eval");
    for f in [
        "summary.parquet",
        "steps.parquet",
        "ttft_breakdown.svg",
        "frontier_all.svg",
    ] {
        assert!(dir.join(f).exists(), "{f}");
    }

    // One new selector: only its column (one item per sample) is computed.
    sb.write(
        "a.toml",
        &pipeline("a", &two, r#"["vanilla", "full", "cat"]"#),
    );
    let text = run_ok(&sb, &["run", p]);
    assert!(line(&text, "precompute").starts_with("cached"), "{text}");
    let fe = format!("items: {SAMPLES} computed, {} cached", 2 * SAMPLES);
    assert!(line(&text, "fusion_eval").contains(&fe), "{text}");
    let clean = scores(&dir);
    let hits: f64 = clean
        .iter()
        .filter(|(k, _)| k.2 == "cat" && k.3 == "reuse_hit_rate")
        .map(|(_, v)| v)
        .sum();
    assert!(hits > 0.0, "no precomputed chunk reused: {clean:?}");

    // A second pipeline over one more essay: only the new essay's chunks
    // are computed; every chunk shared with the first comes from the store.
    let three = docs(&sb, "three", 3);
    let q = sb.write("b.toml", &pipeline("b", &three, r#"["full"]"#));
    let text = run_ok(&sb, &["run", q.to_str().unwrap()]);
    let (new, shared) = items(line(&text, "precompute"));
    assert!(new > 0 && shared == n_chunks, "{text}");

    // Tamper with one chunk's KV file, truncate another's; drop the cat
    // items so the next run recomputes them over the damaged files.
    let mut kv: Vec<PathBuf> = sb
        .objects()
        .into_iter()
        .map(|o| o.join("kv.bin"))
        .filter(|f| f.exists())
        .collect();
    kv.sort();
    assert_eq!(kv.len(), n_chunks + new);
    for (i, f) in kv.iter().enumerate() {
        writable(f);
        let mut b = std::fs::read(f).unwrap();
        if i % 2 == 0 {
            let n = b.len();
            b[n / 2] ^= 0x55;
        } else {
            b.truncate(b.len() / 2);
        }
        std::fs::write(f, b).unwrap();
    }
    let cat = items_of(&sb, "cat");
    assert_eq!(cat.len(), SAMPLES);
    for o in cat {
        let mut stack = vec![o.clone()];
        while let Some(d) = stack.pop() {
            writable(&d);
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                }
            }
        }
        std::fs::remove_dir_all(&o).unwrap();
    }
    let out = sb.kvlab(&["run", p, "--stage", "fusion_eval", "--force"]);
    assert!(out.status.success(), "{}", crate::sandbox::stderr(&out));
    let text = crate::sandbox::stdout(&out);
    assert!(line(&text, "fusion_eval").contains(&fe), "{text}");
    let bad = scores(&dir);
    for (k, v) in &clean {
        let now = bad[k];
        match (k.2.as_str(), k.3.as_str()) {
            (_, m) if m.ends_with("_ms") => {}
            // Every file the clean run loaded is now damaged: counted as
            // corrupt, none reused.
            ("cat", "corrupt_kv_files") => {
                let hit = clean[&(
                    k.0.clone(),
                    k.1.clone(),
                    k.2.clone(),
                    "reuse_hit_rate".into(),
                )];
                assert_eq!(now > 0.0, hit > 0.0, "{k:?}")
            }
            ("cat", "reuse_hit_rate") => assert_eq!(now, 0.0, "{k:?}"),
            // The answers are those from the intact files.
            _ => assert_eq!(now, *v, "{k:?}"),
        }
    }
    let corrupt: f64 = bad
        .iter()
        .filter(|(k, _)| k.2 == "cat" && k.3 == "corrupt_kv_files")
        .map(|(_, v)| v)
        .sum();
    assert!(corrupt > 0.0, "{bad:?}");
}
