//! The press_eval stage on the real model through the runner: every cell of
//! the retention table, one new press computing only its column, and a bad
//! ratio or press refused before anything runs; the attention analysis
//! beside it.

use crate::sandbox::{
    essays_dir, smollm2_gguf, stderr, stdout, Sandbox, ESSAYS_SHA256, SMOLLM2_SHA256,
};

fn sha256(p: &str) -> String {
    let o = std::process::Command::new("sha256sum")
        .arg(p)
        .output()
        .unwrap();
    stdout(&o).split_whitespace().next().unwrap().to_string()
}

fn pipeline(presses: &str, ratios: &str) -> String {
    let alice = std::env::var("KVLAB_ALICE_TXT").expect("KVLAB_ALICE_TXT: run with `make test`");
    format!(
        r#"name = "p"
[stages.model]
kind = "fetch"
file = "{model}"
sha256 = "{msha}"
output = "model.gguf"
[stages.essays]
kind = "fetch"
file = "{essays}"
sha256 = "{esha}"
output = "essays"
[stages.alice]
kind = "fetch"
file = "{alice}"
sha256 = "{asha}"
output = "alice29.txt"
[stages.chunk]
kind = "chunk"
inputs = {{ model = "model", docs = "essays" }}
chunk_tokens = 128
max_docs = 3
[stages.tasks]
kind = "tasks"
inputs = {{ chunks = "chunk", model = "model" }}
needle_context_tokens = [256]
needle_depths = [0.5]
ruler_tasks = ["niah_single"]
ruler_context_tokens = [256]
ruler_samples = 1
qa_samples = 1
qa_docs = 2
[stages.press_eval]
kind = "press_eval"
inputs = {{ model = "model", text = "alice", tasks = "tasks" }}
presses = {presses}
ratios = {ratios}
tasks = ["needle", "niah_single"]
max_samples = 1
window = 128
max_windows = 1
max_new_tokens = 4
[stages.attention]
kind = "attention"
inputs = {{ model = "model", text = "alice" }}
window = 128
max_windows = 1
n_queries = 16
"#,
        model = smollm2_gguf().display(),
        msha = SMOLLM2_SHA256,
        essays = essays_dir().display(),
        esha = ESSAYS_SHA256,
        asha = sha256(&alice),
    )
}

fn line<'a>(out: &'a str, stage: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(stage))
        .unwrap_or_else(|| panic!("no line for {stage}: {out}"))
}

#[test]
fn press_matrix_has_every_cell_and_one_new_press_is_one_column() {
    let sb = Sandbox::new("pressmatrix");
    let p = sb.write(
        "p.toml",
        &pipeline(r#"["streaming_llm", "knorm"]"#, "[0.0, 0.5]"),
    );
    let p = p.to_str().unwrap();
    let out = sb.kvlab(&["run", p]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    // 3 rows (a window, a needle, a niah_single sample) × 5 columns
    // (no_press; each press at 0 and 0.5); the ratio-0 cells share no_press's item.
    assert!(
        line(&text, "press_eval").contains("items: 9 computed, 6 cached"),
        "{text}"
    );
    let dir = sb.result("p", "press_eval");
    let ret = kvlab::table::read_parquet(&dir.join("retention.parquet")).unwrap();
    let task = ret.column("task").unwrap().str().unwrap().clone();
    let press = ret.column("press").unwrap().str().unwrap().clone();
    let ratio = ret.column("ratio").unwrap().f64().unwrap().clone();
    let metric = ret.column("metric").unwrap().str().unwrap().clone();
    let r = ret.column("retention").unwrap().f64().unwrap().clone();
    let find = |t: &str, pr: &str, ra: f64, m: &str| {
        (0..ret.height()).find(|&i| {
            task.get(i) == Some(t)
                && press.get(i) == Some(pr)
                && ratio.get(i) == Some(ra)
                && metric.get(i) == Some(m)
        })
    };
    for (t, m) in [
        ("perplexity:alice29", "ppl"),
        ("needle", "contains"),
        ("niah_single", "f1"),
    ] {
        for (pr, ra) in [
            ("no_press", 0.0),
            ("streaming_llm", 0.0),
            ("streaming_llm", 0.5),
            ("knorm", 0.0),
            ("knorm", 0.5),
        ] {
            let i = find(t, pr, ra, m).unwrap_or_else(|| panic!("no cell {t} {pr} {ra} {m}"));
            if ra == 0.0 && t.starts_with("perplexity") {
                // Ratio 0 is exactly the uncompressed result.
                assert_eq!(r.get(i), Some(1.0), "{t} {pr}");
            }
        }
    }
    let ppl = find("perplexity:alice29", "knorm", 0.5, "ppl").unwrap();
    assert!(r.get(ppl).unwrap().is_finite() && r.get(ppl).unwrap() > 0.0);
    assert!(dir.join("retention_perplexity_alice29.svg").exists());

    // Attention analysis: each (layer, head)'s masses over types × buckets sum to 1.
    let att = sb.result("p", "attention");
    let a = kvlab::table::read_parquet(&att.join("attention.parquet")).unwrap();
    let (l, h) = (
        a.column("layer").unwrap().i64().unwrap().clone(),
        a.column("head").unwrap().i64().unwrap().clone(),
    );
    let m = a.column("mass").unwrap().f64().unwrap().clone();
    let sum: f64 = (0..a.height())
        .filter(|&i| l.get(i) == Some(3) && h.get(i) == Some(2))
        .map(|i| m.get(i).unwrap())
        .sum();
    assert!((sum - 1.0).abs() < 1e-3, "layer 3 head 2: {sum}");
    for f in [
        "concentration_heatmap.svg",
        "token_types.svg",
        "position_profile.svg",
        "concentration.parquet",
    ] {
        assert!(att.join(f).exists(), "{f}");
    }

    // One more press: only its ratio-0.5 cells are computed.
    sb.write(
        "p.toml",
        &pipeline(r#"["streaming_llm", "knorm", "tova"]"#, "[0.0, 0.5]"),
    );
    let out = sb.kvlab(&["run", p]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        line(&text, "press_eval").contains("items: 3 computed, 18 cached"),
        "{text}"
    );
    assert!(line(&text, "tasks").starts_with("cached"), "{text}");

    // Bad settings: one line naming the field, exit 2, nothing published.
    let before = sb.objects().len();
    for (presses, ratios, field) in [
        (r#"["knorm"]"#, "[0.0, 1.0]", "stages.press_eval.ratios"),
        (
            r#"["knorm", "bogus"]"#,
            "[0.5]",
            "stages.press_eval.presses",
        ),
    ] {
        let bad = sb.write("bad.toml", &pipeline(presses, ratios));
        let out = sb.kvlab(&["run", bad.to_str().unwrap()]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{field}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{field}: {err}");
        assert!(err.contains(field), "no {field} in {err}");
        assert_eq!(
            sb.objects().len(),
            before,
            "{field}: something was published"
        );
    }
}

#[test]
fn press_flags_ratio_zero_is_exact_and_bad_values_name_the_flag() {
    let sb = Sandbox::new("pressflags");
    let model = smollm2_gguf();
    let alice = std::env::var("KVLAB_ALICE_TXT").expect("KVLAB_ALICE_TXT: run with `make test`");
    let m = model.to_str().unwrap();
    let ppl = |extra: &[&str]| {
        let mut args = vec!["perplexity", "--model", m, "--text", &alice];
        args.extend(["--window", "256", "--max-windows", "1", "--json"]);
        args.extend(extra);
        let out = sb.kvlab(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        v["ppl"].as_f64().unwrap()
    };
    let none = ppl(&["--press", "no_press", "--ratio", "0"]);
    assert_eq!(
        ppl(&["--press", "snapkv", "--ratio", "0"]).to_bits(),
        none.to_bits()
    );
    assert!(ppl(&["--press", "knorm", "--ratio", "0.5"]) > 1.0);
    for (extra, flag) in [
        (["--press", "bogus", "--ratio", "0.5"], "--press"),
        (["--press", "knorm", "--ratio", "1.0"], "--ratio"),
    ] {
        let mut args = vec!["perplexity", "--model", m, "--text", &alice];
        args.extend(extra);
        let out = sb.kvlab(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(flag), "no {flag} in {err}");
    }
}

#[test]
fn a_press_window_beyond_the_compressed_windows_publishes_nothing() {
    let sb = Sandbox::new("presswinpipe");
    // window = 128: each perplexity window compresses its first 64 tokens,
    // which snapkv's 64-token observation window does not fit.
    let p = sb.write("p.toml", &pipeline(r#"["knorm", "snapkv"]"#, "[0.0, 0.5]"));
    let out = sb.kvlab(&["run", p.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("stages.press_eval.presses") && err.contains("snapkv's observation window"),
        "{err}"
    );
    assert!(sb.objects().is_empty(), "published: {:?}", sb.objects());
}
