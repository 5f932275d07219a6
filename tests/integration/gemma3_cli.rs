//! Gemma 3 270M (the pinned Q4_K_M GGUF, KVLAB_GEMMA3_GGUF from `make
//! test`) through the CLI: `generate --json` reproduces transformers' greedy
//! ids and text (tests/fixtures/gemma3/greedy.json), and a short `perplexity`
//! of alice29 runs with the window and token count it was asked for.

use crate::sandbox::{env_path, json_ids as ids, stderr, stdout, Sandbox};

fn gemma3_gguf() -> String {
    env_path("KVLAB_GEMMA3_GGUF", "the Gemma 3 270M GGUF")
        .display()
        .to_string()
}

#[test]
fn gemma3_generate_json_equals_transformers() {
    let sb = Sandbox::new("gemma3-gen");
    let p =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gemma3/greedy.json");
    let fx: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    let model = gemma3_gguf();
    for case in fx["cases"].as_array().unwrap() {
        let want = ids(&case["new_ids"]);
        let n = want.len().to_string();
        let run = |dtype: &str, n: &str| {
            let out = sb.kvlab(&[
                "generate",
                "--model",
                &model,
                "--prompt",
                case["prompt"].as_str().unwrap(),
                "--max-tokens",
                n,
                "--dtype",
                dtype,
                "--json",
            ]);
            assert!(out.status.success(), "{}", stderr(&out));
            serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap()
        };
        let v = run("f32", &n);
        assert_eq!(
            ids(&v["prompt_ids"]),
            ids(&case["prompt_ids"]),
            "{}",
            case["name"]
        );
        assert_eq!(ids(&v["new_ids"]), want, "{}", case["name"]);
        assert_eq!(v["text"], case["text"], "{}", case["name"]);
        // The default (quantized) path agrees on the first token.
        let q = run("quant", "1");
        assert_eq!(
            ids(&q["new_ids"])[..1],
            want[..1],
            "quant, {}",
            case["name"]
        );
    }
}

#[test]
fn gemma3_short_perplexity_runs() {
    let sb = Sandbox::new("gemma3-ppl");
    let alice = std::env::var("KVLAB_ALICE_TXT").expect("KVLAB_ALICE_TXT: run with `make test`");
    let out = sb.kvlab(&[
        "perplexity",
        "--model",
        &gemma3_gguf(),
        "--text",
        &alice,
        "--window",
        "128",
        "--max-windows",
        "2",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let ppl = v["ppl"].as_f64().unwrap();
    eprintln!("gemma3 alice29, 2 windows of 128: ppl {ppl:.3}");
    assert_eq!(v["windows"], 2);
    assert_eq!(v["tokens"], 2 * 127);
    // A 270M model on plain English prose: far from uniform over 262k tokens.
    assert!(ppl.is_finite() && ppl > 1.0 && ppl < 200.0, "ppl {ppl}");
}
