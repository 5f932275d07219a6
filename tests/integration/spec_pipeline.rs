//! Speculative generate stages with a KV press, through the runner: seed
//! 004's third table (`press.parquet` of spec_compare) with bytes held and
//! perplexity; a ratio-0 press shares the unpressed method's item; a draft
//! whose vocabulary differs from the target's is refused naming `inputs.draft`.

use crate::sandbox::{
    model_and_prompts_stages, sha256, smollm2_gguf, stderr, stdout, Sandbox, SMOLLM2_SHA256,
};

fn head(extra_fetch: &str) -> String {
    format!(
        r#"name = "s"
{head}[stages.draft_model]
kind = "fetch"
file = "{model}"
sha256 = "{SMOLLM2_SHA256}"
output = "model.gguf"
{extra_fetch}
"#,
        head = model_and_prompts_stages(),
        model = smollm2_gguf().display(),
    )
}

fn generate(name: &str, extra: &str) -> String {
    format!(
        r#"[stages.{name}]
kind = "generate"
inputs = {{ model = "model", prompts = "prompts", draft = "draft_model" }}
draft = "model"
gamma = 3
max_prompts = 1
max_new_tokens = 16
{extra}
"#
    )
}

#[test]
fn press_table_has_bytes_and_perplexity_and_ratio_zero_is_the_plain_item() {
    let sb = Sandbox::new("specpress");
    let alice = std::env::var("KVLAB_ALICE_TXT").expect("KVLAB_ALICE_TXT: run with `make test`");
    let press = "press = \"streaming_llm\"\npress_ratio = 0.5\npress_every = 8";
    let text = [
        head(&format!(
            "[stages.alice]\nkind = \"fetch\"\nfile = \"{alice}\"\nsha256 = \"{}\"\noutput = \"alice29.txt\"\n",
            sha256(&alice)
        )),
        "[stages.baseline]\nkind = \"generate\"\ninputs = { model = \"model\", prompts = \"prompts\" }\nmax_prompts = 1\nmax_new_tokens = 16\n".to_string(),
        generate("spec_model", ""),
        generate("zero", "press = \"knorm\"\npress_ratio = 0.0"),
        generate("press_target", press),
        generate("press_both", &format!("{press}\npress_on = \"both\"")),
        r#"[stages.press_ppl]
kind = "press_eval"
inputs = { model = "model", text = "alice" }
presses = ["streaming_llm"]
ratios = [0.0, 0.5]
press_every = 8
window = 128
max_windows = 1
[stages.compare]
kind = "spec_compare"
inputs = { baseline = "baseline", spec_model = "spec_model", press_target = "press_target", press_both = "press_both", perplexity = "press_ppl" }
formats = ["svg"]
"#
        .to_string(),
    ]
    .concat();
    let p = sb.write("s.toml", &text);
    let out = sb.kvlab(&["run", p.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stdout(&out);
    let line = |stage: &str| {
        log.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(stage))
            .unwrap_or_else(|| panic!("no line for {stage}: {log}"))
            .to_string()
    };
    // The ratio-0 press is no press: the same item as spec_model's.
    let shared = |s: &str| line(s).contains("0 computed, 1 cached");
    assert!(shared("zero") || shared("spec_model"), "{log}");
    let t = kvlab::table::read_parquet(&sb.result("s", "compare").join("press.parquet")).unwrap();
    assert_eq!(t.height(), 3, "{t}");
    let col = |n: &str| t.column(n).unwrap().f64().unwrap().clone();
    let (bytes, ppl) = (col("kv_bytes"), col("ppl"));
    let on = t.column("press_on").unwrap().str().unwrap().clone();
    let dbytes = col("draft_kv_bytes");
    // Rows: spec_model (no press), press_target, press_both.
    assert_eq!(on.get(1), Some("target"));
    assert!(bytes.get(1).unwrap() < bytes.get(0).unwrap(), "{t}");
    // Only press_both compresses the draft's own cache.
    assert!(dbytes.get(2).unwrap() < dbytes.get(0).unwrap(), "{t}");
    assert!(dbytes.get(2).unwrap() < dbytes.get(1).unwrap(), "{t}");
    let p0 = ppl.get(0).unwrap();
    assert!(p0.is_finite() && ppl.get(1).unwrap().is_finite(), "{t}");
    assert_ne!(
        ppl.get(1),
        ppl.get(0),
        "the compressed target's perplexity: {t}"
    );
    let out = kvlab::table::read_parquet(&sb.result("s", "press_target").join("outputs.parquet"))
        .unwrap();
    let m = out
        .column("method")
        .unwrap()
        .str()
        .unwrap()
        .get(0)
        .unwrap()
        .to_string();
    assert!(m.ends_with("+streaming_llm0.5@target/e8"), "{m}");
}

#[test]
fn a_draft_with_another_vocabulary_is_refused_naming_inputs_draft() {
    let sb = Sandbox::new("specvocab");
    let vocab = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/vocab/ggml-vocab-gpt-2.gguf");
    let v = vocab.to_str().unwrap();
    let text = [
        head(&format!(
            "[stages.other]\nkind = \"fetch\"\nfile = \"{v}\"\nsha256 = \"{}\"\noutput = \"other.gguf\"\n",
            sha256(v)
        )),
        generate("decode", "").replace("draft = \"draft_model\" }", "draft = \"other\" }"),
    ]
    .concat();
    let p = sb.write("s.toml", &text);
    let out = sb.kvlab(&["run", p.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("inputs.draft") && err.contains("vocabulary"),
        "{err}"
    );
    assert!(!sb.result("s", "decode").exists(), "the stage published");
}
