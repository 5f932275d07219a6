//! The LEGO stages end to end on a tiny config: train → two-stage → early
//! exit → cache speedup → report; a rerun computes nothing; a threshold
//! change recomputes only the inference stages; bad settings exit 2 naming
//! the field and publish nothing.

use crate::sandbox::{run_ok, sha256, stderr, Sandbox};

fn alice() -> String {
    std::env::var("KVLAB_ALICE_TXT").expect("KVLAB_ALICE_TXT: run with `make test`")
}

fn pipeline(
    text: &str,
    train_extra: &str,
    two_stage_threshold: &str,
    exit_thresholds: &str,
) -> String {
    format!(
        r#"name = "lego"
[stages.alice]
kind = "fetch"
file = "{text}"
sha256 = "{sha}"
output = "alice29.txt"
[stages.train]
kind = "lego_train"
inputs = {{ text = "alice" }}
seq_len = 16
dim = 32
n_heads = 2
intermediate_size = 64
phase1_samples = 200
phase1_epochs = 1
phase2_epochs = 1
max_val_windows = 20
{train_extra}
[stages.two_stage]
kind = "lego_two_stage"
inputs = {{ train = "train" }}
thresholds = [0.2, 0.5, 0.8]
threshold = {two_stage_threshold}
[stages.early_exit]
kind = "lego_early_exit"
inputs = {{ train = "train" }}
thresholds = {exit_thresholds}
strategies = ["lazy", "propagate"]
n_prompts = 2
prompt_tokens = 8
max_new_tokens = 8
[stages.cache_speedup]
kind = "lego_cache_speedup"
inputs = {{ train = "train" }}
lengths = [8, 16]
prompt_tokens = 8
[stages.report]
kind = "report"
"#,
        sha = sha256(text),
    )
}

fn line<'a>(out: &'a str, stage: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(stage))
        .unwrap_or_else(|| panic!("no line for {stage}: {out}"))
}

#[test]
fn lego_pipeline_runs_caches_and_recomputes_only_inference_on_a_threshold_change() {
    let sb = Sandbox::new("legopipe");
    let p = sb.write("lego.toml", &pipeline(&alice(), "", "0.5", "[0.5]"));
    let p = p.to_str().unwrap();
    let text = run_ok(&sb, &["run", p]);
    assert!(text.contains("6 stage(s) computed, 0 cached"), "{text}");
    let train = sb.result("lego", "train");
    for f in [
        "phase1/config.json",
        "phase1/model.safetensors",
        "phase2/model.safetensors",
        "loss_curves.parquet",
        "metrics.parquet",
        "mined.parquet",
        "summary.json",
        "loss_curves.svg",
    ] {
        assert!(train.join(f).exists(), "{f}");
    }
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(train.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["phases"][1]["n_layers"], 4, "{s}");
    assert!(
        s["phases"][1]["val_ppl"].as_f64().unwrap().is_finite(),
        "{s}"
    );
    for (stage, f) in [
        ("two_stage", "sweep.parquet"),
        ("two_stage", "confidence.svg"),
        ("two_stage", "threshold_sweep.svg"),
        ("early_exit", "early_exit.parquet"),
        ("early_exit", "speedup.svg"),
        ("cache_speedup", "cache_speedup.parquet"),
        ("report", "index.html"),
    ] {
        assert!(sb.result("lego", stage).join(f).exists(), "{stage}/{f}");
    }
    // threshold 0.5 and the baseline 1.0, per strategy.
    assert!(
        line(&text, "early_exit").contains("items: 4 computed, 0 cached"),
        "{text}"
    );

    let text = run_ok(&sb, &["run", p]);
    assert!(text.contains("0 stage(s) computed, 6 cached"), "{text}");

    sb.write("lego.toml", &pipeline(&alice(), "", "0.6", "[0.5, 0.7]"));
    let text = run_ok(&sb, &["run", p]);
    for s in ["alice", "train", "cache_speedup"] {
        assert!(line(&text, s).starts_with("cached"), "{text}");
    }
    for s in ["two_stage", "early_exit", "report"] {
        assert!(line(&text, s).starts_with("computed"), "{text}");
    }
    assert!(
        line(&text, "two_stage").contains("items: 0 computed, 1 cached"),
        "{text}"
    );
    assert!(
        line(&text, "early_exit").contains("items: 2 computed, 4 cached"),
        "{text}"
    );
}

#[test]
fn bad_lego_settings_exit_2_naming_the_field() {
    let sb = Sandbox::new("legobad");
    let tiny = sb.write("tiny.txt", "too short");
    let cases = [
        (
            pipeline(&alice(), "hard_example_ratio = 1.0", "0.5", "[0.5]"),
            "stages.train.hard_example_ratio",
        ),
        (
            pipeline(&alice(), "hard_example_ratio = 0.0", "0.5", "[0.5]"),
            "stages.train.hard_example_ratio",
        ),
        (
            pipeline(&alice(), "phase2_layers = 2", "0.5", "[0.5]"),
            "stages.train.phase2_layers",
        ),
        (
            pipeline(&alice(), "", "1.5", "[0.5]"),
            "stages.two_stage.threshold",
        ),
        (
            pipeline(&alice(), "", "0.5", "[-0.1]"),
            "stages.early_exit.thresholds",
        ),
        (
            pipeline(tiny.to_str().unwrap(), "", "0.5", "[0.5]"),
            "stages.train.inputs.text",
        ),
    ];
    for (text, field) in cases {
        let p = sb.write("bad.toml", &text);
        let out = sb.kvlab(&["run", p.to_str().unwrap()]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{field}: {err}");
        assert!(err.contains(field), "{field}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{field}: {err}");
        assert!(!sb.result("lego", "train").exists(), "{field}");
    }
}
