//! `--press` on `kvlab generate` / `kvlab perplexity` beyond the basics:
//! an observation window or budget not fitting the compressed context is one
//! error line naming `--press-window` / `--press-budget` (never perplexity's
//! `--window`), exit 2; the press runs with speculation and `--press-every`
//! through the decoder's hook, and ratio 0 there is exactly plain decoding.

use crate::sandbox::{generate_json, smollm2_gguf, stderr, Sandbox};

#[test]
fn a_window_or_budget_beyond_the_context_names_the_press_flag() {
    let sb = Sandbox::new("presswin");
    let model = smollm2_gguf();
    let m = model.to_str().unwrap();
    let alice = std::env::var("KVLAB_ALICE_TXT").expect("KVLAB_ALICE_TXT: run with `make test`");
    let ppl = [
        "perplexity",
        "--model",
        m,
        "--text",
        &alice,
        "--window",
        "64",
    ];
    let gen = [
        "generate",
        "--model",
        m,
        "--prompt",
        "hi",
        "--max-tokens",
        "2",
    ];
    let cases: &[(&[&str], &[&str], &str)] = &[
        // The windows' first halves (32 tokens) are compressed.
        (
            &ppl,
            &[
                "--press",
                "snapkv",
                "--ratio",
                "0.5",
                "--press-window",
                "40",
            ],
            "--press-window",
        ),
        (
            &ppl,
            &["--press", "knorm", "--press-budget", "100"],
            "--press-budget",
        ),
        (
            &gen,
            &[
                "--press",
                "snapkv",
                "--ratio",
                "0.5",
                "--press-window",
                "500",
            ],
            "--press-window",
        ),
        (
            &gen,
            &["--press", "snapkv", "--ratio", "0.5"],
            "--press-window",
        ),
        (
            &gen,
            &["--press", "knorm", "--press-budget", "9999"],
            "--press-budget",
        ),
        (
            &gen,
            &["--press", "knorm", "--ratio", "0.5", "--press-window", "8"],
            "--press-window",
        ),
        (
            &gen,
            &["--press", "knorm", "--ratio", "0.5", "--press-budget", "4"],
            "--press-budget",
        ),
        (&gen, &["--press-every", "4"], "--press-every"),
        (
            &gen,
            &[
                "--press",
                "snapkv",
                "--ratio",
                "0.5",
                "--self-spec-layers",
                "4",
            ],
            "--press",
        ),
        (
            &gen,
            &[
                "--press",
                "knorm",
                "--ratio",
                "0.5",
                "--self-spec-layers",
                "4",
                "--press-on",
                "draft",
            ],
            "--press-on",
        ),
        (
            &gen,
            &["--press", "knorm", "--ratio", "0.5", "--press-on", "both"],
            "--press-on",
        ),
    ];
    for (cmd, flags, flag) in cases {
        let mut args = cmd.to_vec();
        args.extend_from_slice(flags);
        let out = sb.kvlab(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{flags:?}: {err}");
        assert!(
            err.contains(&format!(": {flag}: ")),
            "{flags:?}: no {flag} in {err}"
        );
    }
}

#[test]
fn a_press_runs_with_speculation_and_press_every() {
    let sb = Sandbox::new("presshook");
    let plain = generate_json(&sb, &[]);
    let spec = ["--self-spec-layers", "20", "--gamma", "3"];
    // Ratio 0 through the hook is plain decoding, speculative or not.
    let zero = ["--press", "knorm", "--ratio", "0", "--press-every", "8"];
    let mut full = Vec::new();
    for extra in [zero.to_vec(), [&spec[..], &zero[..]].concat()] {
        let v = generate_json(&sb, &extra);
        assert_eq!(v["new_ids"], plain["new_ids"], "{extra:?}");
        full.push(v["kv_bytes"].as_u64().unwrap());
    }
    let held = |x: &serde_json::Value| x["kv_bytes"].as_u64().unwrap();
    let v = generate_json(
        &sb,
        &[
            &spec[..],
            &[
                "--press",
                "streaming_llm",
                "--ratio",
                "0.5",
                "--press-every",
                "8",
            ],
        ]
        .concat(),
    );
    assert_eq!(v["press_on"], "target", "{v}");
    assert_eq!(v["new_ids"].as_array().unwrap().len(), 24, "{v}");
    let (a, d) = (
        v["accepted"].as_u64().unwrap(),
        v["drafted"].as_u64().unwrap(),
    );
    assert!(a <= d, "{v}");
    assert!(held(&v) < full[1], "{v}");
    // --press-every on plain decoding re-compresses (it used to be ignored).
    let once = generate_json(
        &sb,
        &["--press", "knorm", "--ratio", "0.5", "--press-on", "target"],
    );
    let every = generate_json(
        &sb,
        &["--press", "knorm", "--ratio", "0.5", "--press-every", "4"],
    );
    assert!(
        held(&every) < held(&once) && held(&once) < full[0],
        "{once} {every}"
    );
}
