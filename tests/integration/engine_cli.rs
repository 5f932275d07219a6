//! The engine through the CLI on the real SmolLM2 GGUF, against goldens made
//! by Hugging Face transformers (tools/make_fixtures.py), and the model
//! stages in a pipeline read back with duckdb.

use crate::sandbox::{json_ids as ids, smollm2_gguf, stderr, stdout, test_python, Sandbox};

fn fixture(name: &str) -> serde_json::Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/smollm2")
        .join(name);
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn greedy_continuations_equal_transformers() {
    let sb = Sandbox::new("greedy");
    let model = smollm2_gguf();
    for case in fixture("greedy.json").as_array().unwrap() {
        let prompt_ids = ids(&case["prompt_ids"]);
        let golden = ids(&case["new_ids"]);
        let f = sb.write("ids.json", &serde_json::to_string(&prompt_ids).unwrap());
        let out = sb.kvlab(&[
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--prompt-ids-file",
            f.to_str().unwrap(),
            "--max-tokens",
            &golden.len().to_string(),
            "--dtype",
            "f32",
            "--json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(ids(&v["new_ids"]), golden, "prompt {}", case["name"]);
        assert!(v["ttft_ms"].as_f64().unwrap() > 0.0 && v["tpot_ms"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn chat_prompt_is_tokenized_like_transformers() {
    let sb = Sandbox::new("chat");
    let cases = fixture("greedy.json");
    let chat = cases
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["chat"] == true)
        .expect("a chat case");
    let user = "What is the KV cache in a transformer? Answer briefly.";
    let out = sb.kvlab(&[
        "generate",
        "--model",
        smollm2_gguf().to_str().unwrap(),
        "--prompt",
        user,
        "--chat",
        "--max-tokens",
        "4",
        "--dtype",
        "f32",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(ids(&v["prompt_ids"]), ids(&chat["prompt_ids"]));
    assert_eq!(ids(&v["new_ids"]), ids(&chat["new_ids"])[..4].to_vec());
}

#[test]
fn perplexity_of_alice_within_one_percent_of_transformers() {
    let sb = Sandbox::new("ppl");
    let alice = std::env::var("KVLAB_ALICE_TXT").expect("KVLAB_ALICE_TXT: run with `make test`");
    let golden = fixture("perplexity.json");
    let out = sb.kvlab(&[
        "perplexity",
        "--model",
        smollm2_gguf().to_str().unwrap(),
        "--text",
        &alice,
        "--window",
        "512",
        "--dtype",
        "f32",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let (ours, theirs) = (
        v["ppl"].as_f64().unwrap(),
        golden["ppl_transformers"].as_f64().unwrap(),
    );
    eprintln!(
        "alice29 perplexity: kvlab f32 {ours:.4}, transformers {theirs:.4}, llama.cpp reference {}",
        golden["ppl_llamacpp_reference"]
    );
    assert_eq!(
        v["tokens"].as_u64().unwrap(),
        golden["n_predicted"].as_u64().unwrap(),
        "scored token count differs"
    );
    assert!(
        (ours / theirs - 1.0).abs() < 0.01,
        "kvlab {ours} vs transformers {theirs}"
    );
}

#[test]
fn bad_dtype_flags_are_input_errors() {
    let sb = Sandbox::new("dtypeflags");
    let model = smollm2_gguf();
    for (flag, value) in [("--dtype", "q3"), ("--kv-dtype", "f8")] {
        let out = sb.kvlab(&[
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            "hi",
            flag,
            value,
        ]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains(flag) && err.contains(&format!("'{value}'")),
            "{err}"
        );
    }
}

#[test]
fn broken_model_files_are_input_errors() {
    let sb = Sandbox::new("badmodel");
    let bytes = std::fs::read(smollm2_gguf()).unwrap();
    let cut = sb.dir.join("cut.gguf");
    std::fs::write(&cut, &bytes[..20_000_000]).unwrap();
    let out = sb.kvlab(&[
        "generate",
        "--model",
        cut.to_str().unwrap(),
        "--prompt",
        "hi",
        "--max-tokens",
        "2",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("cut.gguf") && err.contains("truncated"),
        "{err}"
    );
    let junk = sb.write("junk.gguf", "definitely not a gguf file");
    let out = sb.kvlab(&[
        "generate",
        "--model",
        junk.to_str().unwrap(),
        "--prompt",
        "hi",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("junk.gguf"), "{}", stderr(&out));
}

#[test]
fn generate_and_perplexity_stages_write_tables_duckdb_reads() {
    let sb = Sandbox::new("modelstages");
    let mt = std::env::var("KVLAB_MTBENCH").expect("KVLAB_MTBENCH: run with `make test`");
    let alice = std::env::var("KVLAB_ALICE_TXT").expect("KVLAB_ALICE_TXT: run with `make test`");
    let sha = crate::sandbox::sha256;
    let p = format!(
        r#"name = "m"
[stages.model]
kind = "fetch"
file = "{model}"
sha256 = "{msha}"
output = "model.gguf"
[stages.prompts]
kind = "fetch"
file = "{mt}"
sha256 = "{mtsha}"
output = "questions.jsonl"
[stages.text]
kind = "fetch"
file = "{alice}"
sha256 = "{asha}"
output = "alice29.txt"
[stages.generate]
kind = "generate"
inputs = {{ model = "model", prompts = "prompts" }}
max_prompts = 2
max_new_tokens = 6
[stages.perplexity]
kind = "perplexity"
inputs = {{ model = "model", text = "text" }}
window = 128
stride = 64
max_windows = 3
"#,
        model = smollm2_gguf().display(),
        msha = crate::sandbox::SMOLLM2_SHA256,
        mtsha = sha(&mt),
        asha = sha(&alice),
    );
    let path = sb.write("m.toml", &p);
    let out = sb.kvlab(&["run", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let script = r#"
import duckdb
o = duckdb.sql("select count(*), min(n_tokens), max(prompt_tokens) from 'results/m/generate/outputs.parquet'").fetchone()
s = duckdb.sql("select count(distinct sample), count(*), min(ttft_ms), avg(tpot_ms) from 'results/m/generate/steps.parquet'").fetchone()
p = duckdb.sql("select value from 'results/m/perplexity/scores.parquet' where metric = 'ppl' and sample = 'all'").fetchone()
n = duckdb.sql("select value from 'results/m/perplexity/scores.parquet' where metric = 'tokens'").fetchone()
print(o[0], o[1], o[2], s[0], s[1], s[2] > 0, s[3] > 0, p[0], n[0])
"#;
    let out = std::process::Command::new(test_python())
        .arg("-c")
        .arg(script)
        .current_dir(&sb.dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let f: Vec<String> = stdout(&out).split_whitespace().map(String::from).collect();
    assert_eq!(f[0], "2", "two prompts: {f:?}");
    assert_eq!(f[1], "6", "six new tokens each: {f:?}");
    assert!(
        f[2].parse::<i64>().unwrap() > 20,
        "chat-templated prompts are long: {f:?}"
    );
    assert_eq!(
        (f[3].as_str(), f[4].as_str()),
        ("2", "12"),
        "one step row per token: {f:?}"
    );
    assert_eq!((f[5].as_str(), f[6].as_str()), ("True", "True"));
    let ppl: f64 = f[7].parse().unwrap();
    assert!(ppl > 2.0 && ppl < 200.0, "implausible perplexity {ppl}");
    // 127 tokens in the first window, then 64 in each of the other two.
    assert_eq!(f[8], "255.0", "{f:?}");

    // An unknown cache dtype is refused before anything runs.
    let mut before = sb.objects();
    let bad = p.replace(
        "max_new_tokens = 6",
        "max_new_tokens = 6\nkv_dtype = \"f8\"",
    );
    let bad = sb.write("bad.toml", &bad);
    let out = sb.kvlab(&["run", bad.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    for needle in ["bad.toml", "stages.generate.kv_dtype", "'f8'"] {
        assert!(err.contains(needle), "no '{needle}' in: {err}");
    }
    let mut after = sb.objects();
    before.sort();
    after.sort();
    assert_eq!(before, after, "nothing new in the store");
}
