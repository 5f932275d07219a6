//! `kvlab generate` with speculative decoding on the real SmolLM2 GGUF:
//! bad settings are one-line input errors naming the flag; greedy output in
//! f32 equals plain decoding for self-speculation, prompt lookup and a draft
//! model (the same file), and --json reports the acceptance counters.

use crate::sandbox::{generate_json, smollm2_gguf, stderr, Sandbox};

#[test]
fn bad_speculative_flags_are_input_errors_naming_the_flag() {
    let sb = Sandbox::new("specflags");
    let model = smollm2_gguf();
    let m = model.to_str().unwrap();
    let vocab = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/vocab/ggml-vocab-gpt-2.gguf");
    let v = vocab.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--self-spec-layers", "4", "--gamma", "0"], "--gamma"),
        (&["--self-spec-layers", "30"], "--self-spec-layers"),
        (&["--self-spec-layers", "0"], "--self-spec-layers"),
        (&["--prompt-lookup", "0"], "--prompt-lookup"),
        (&["--draft", "/nonexistent/draft.gguf"], "--draft"),
        (&["--draft", v], "--draft"),
        (
            &[
                "--prompt-lookup",
                "2",
                "--intermediate",
                "/nonexistent/mid.gguf",
            ],
            "--intermediate",
        ),
        (
            &["--prompt-lookup", "2", "--dynamic-gamma", "fast"],
            "--dynamic-gamma",
        ),
        (&["--gamma", "3"], "--gamma"),
        (
            &["--prompt-lookup", "2", "--self-spec-layers", "3"],
            "--draft/--self-spec-layers/--prompt-lookup",
        ),
    ];
    for (flags, name) in cases {
        let mut args = vec![
            "generate",
            "--model",
            m,
            "--prompt",
            "hi",
            "--max-tokens",
            "2",
        ];
        args.extend_from_slice(flags);
        let out = sb.kvlab(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{flags:?}: {err}");
        assert!(err.contains(name), "{flags:?}: {err}");
    }
    let out = sb.kvlab(&["generate", "--model", m, "--prompt", "hi", "--draft", v]);
    assert!(stderr(&out).contains("vocabulary"), "{}", stderr(&out));
}

#[test]
fn speculative_greedy_equals_plain_on_the_real_model() {
    let sb = Sandbox::new("specgen");
    let plain = generate_json(&sb, &[]);
    let model = smollm2_gguf();
    let m = model.to_str().unwrap();
    for extra in [
        vec!["--self-spec-layers", "24", "--gamma", "3"],
        vec![
            "--prompt-lookup",
            "2",
            "--dynamic-gamma",
            "heuristic",
            "--gamma",
            "2",
        ],
        vec!["--draft", m, "--gamma", "4", "--dynamic-gamma", "aimd"],
    ] {
        let v = generate_json(&sb, &extra);
        assert_eq!(v["new_ids"], plain["new_ids"], "{extra:?}");
        let (d, a) = (
            v["drafted"].as_u64().unwrap(),
            v["accepted"].as_u64().unwrap(),
        );
        assert!(a <= d, "{v}");
        let rate = v["acceptance_rate"].as_f64().unwrap();
        assert!((rate - a as f64 / d.max(1) as f64).abs() < 1e-9, "{v}");
        assert!(v["mean_accepted_len"].as_f64().unwrap() >= 0.0);
        if extra[0] == "--draft" {
            // The target drafting for itself is accepted (almost) always.
            assert!(rate > 0.9, "{v}");
        }
    }
}
