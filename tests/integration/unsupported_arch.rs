//! A model of an architecture kvlab does not implement (BERT) is bad input:
//! one line naming the file and `general.architecture`, exit code 2, from
//! `kvlab generate` and `kvlab perplexity` on a GGUF; the same error (one
//! line, input error) from the library on an HF `config.json`.

use candle_core::quantized::gguf_file;

use crate::sandbox::{smollm2_gguf, stderr, Sandbox};

/// SmolLM2's metadata (so its tokenizer loads) with the architecture set to
/// `bert` and no tensors: the model config is the first thing to fail.
fn bert_gguf(sb: &Sandbox) -> std::path::PathBuf {
    let mut f = std::fs::File::open(smollm2_gguf()).unwrap();
    let content = gguf_file::Content::read(&mut f).unwrap();
    let mut md: Vec<(&str, gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    md.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in &mut md {
        if *k == "general.architecture" {
            *v = gguf_file::Value::String("bert".into());
        }
    }
    let refs: Vec<(&str, &gguf_file::Value)> = md.iter().map(|(k, v)| (*k, v)).collect();
    let path = sb.dir.join("bert.gguf");
    let mut out = std::fs::File::create(&path).unwrap();
    gguf_file::write(&mut out, &refs, &[]).unwrap();
    path
}

fn expect_one_line_exit_2(out: &std::process::Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "expected exit 2, stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    for n in needles {
        assert!(lines[0].contains(n), "line lacks '{n}': {err}");
    }
}

#[test]
fn unsupported_gguf_architecture_is_one_line_exit_2() {
    let sb = Sandbox::new("bert-gguf");
    let gguf = bert_gguf(&sb);
    let m = gguf.to_str().unwrap();
    let needles = [
        "bert.gguf",
        "general.architecture",
        "unsupported architecture \"bert\"",
    ];
    let out = sb.kvlab(&["generate", "--model", m, "--prompt", "Hello", "--json"]);
    expect_one_line_exit_2(&out, &needles);
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let text = sb.write(
        "t.txt",
        &"The quick brown fox jumps over the lazy dog. ".repeat(40),
    );
    let out = sb.kvlab(&[
        "perplexity",
        "--model",
        m,
        "--text",
        text.to_str().unwrap(),
        "--window",
        "64",
    ]);
    expect_one_line_exit_2(&out, &needles);
}

#[test]
fn unsupported_config_json_model_type_is_one_line_input_error() {
    let sb = Sandbox::new("bert-hf");
    let fx =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny/llama_untied");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.join("config.json")).unwrap()).unwrap();
    cfg["model_type"] = "bert".into();
    cfg["architectures"] = serde_json::json!(["BertModel"]);
    sb.write("bert/config.json", &cfg.to_string());
    std::fs::copy(
        fx.join("model.safetensors"),
        sb.dir.join("bert/model.safetensors"),
    )
    .unwrap();
    let Err(e) =
        kvlab::model::Model::load_hf_dir(&sb.dir.join("bert"), &kvlab::model::LoadOptions::f32())
    else {
        panic!("bert is not supported");
    };
    let msg = e.to_string();
    assert_eq!(e.exit_code(), 2, "{msg}");
    assert_eq!(msg.trim().lines().count(), 1, "{msg}");
    assert!(
        msg.contains("config.json") && msg.contains("model_type") && msg.contains("\"bert\""),
        "{msg}"
    );
}
