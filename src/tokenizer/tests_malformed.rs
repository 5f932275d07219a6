//! A tiny synthetic vocabulary: behaviour on valid metadata, and an input error
//! naming the right key for each kind of malformed metadata.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value, VersionedMagic};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;

use super::Tokenizer;
use crate::Error;

const SPECIALS: [&str; 2] = ["<|im_start|>", "<|im_end|>"];
const MERGES: [&str; 4] = ["h e", "l l", "he ll", "hell o"];

fn strings(v: &[String]) -> Value {
    Value::Array(v.iter().map(|s| Value::String(s.clone())).collect())
}

/// The 256 byte-level characters, merged tokens, then the special tokens.
fn tiny_tokens() -> Vec<String> {
    let mut chars: Vec<char> = ByteLevel::alphabet().into_iter().collect();
    chars.sort();
    let mut tokens: Vec<String> = chars.into_iter().map(String::from).collect();
    tokens.extend(["he", "ll", "hell", "hello"].map(String::from));
    tokens.extend(SPECIALS.map(String::from));
    tokens
}

fn tiny_meta() -> HashMap<String, Value> {
    let tokens = tiny_tokens();
    let n = tokens.len();
    let types = (0..n)
        .map(|i| Value::I32(if i + 2 >= n { 3 } else { 1 }))
        .collect();
    let merges: Vec<String> = MERGES.map(String::from).to_vec();
    HashMap::from([
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String("gpt-2".into())),
        ("tokenizer.ggml.tokens".into(), strings(&tokens)),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        ("tokenizer.ggml.merges".into(), strings(&merges)),
        (
            "tokenizer.ggml.bos_token_id".into(),
            Value::U32(n as u32 - 2),
        ),
        (
            "tokenizer.ggml.eos_token_id".into(),
            Value::U32(n as u32 - 1),
        ),
    ])
}

fn build(metadata: HashMap<String, Value>) -> crate::Result<Tokenizer> {
    let content = Content {
        magic: VersionedMagic::GgufV3,
        metadata,
        tensor_infos: HashMap::new(),
        tensor_data_offset: 0,
    };
    Tokenizer::from_gguf(&content, Path::new("tiny.gguf"))
}

fn id(tok: &str) -> u32 {
    tiny_tokens().iter().position(|t| t == tok).unwrap() as u32
}

#[test]
fn tiny_vocabulary_works() {
    let tok = build(tiny_meta()).unwrap();
    assert_eq!(tok.vocab_size(), 262);
    assert_eq!(tok.encode("hello").unwrap(), vec![id("hello")]);
    assert_eq!(tok.encode("hell").unwrap(), vec![id("hell")]);
    // " hello": the space stays a separate byte token (there is no "Ġ h" merge).
    assert_eq!(tok.encode(" hello").unwrap(), vec![id("Ġ"), id("hello")]);
    assert_eq!(tok.encode("hel").unwrap(), vec![id("he"), id("l")]);
    let ids = tok.encode("<|im_start|>hello<|im_end|>").unwrap();
    assert_eq!(ids, vec![id("<|im_start|>"), id("hello"), id("<|im_end|>")]);
    assert_eq!(tok.decode(&ids).unwrap(), "<|im_start|>hello<|im_end|>");
    assert_eq!(tok.token_text(id("Ġ")).as_deref(), Some(" "));
    assert!(tok.is_special(id("<|im_end|>")) && !tok.is_special(id("hello")));
    assert_eq!(tok.stop_ids(), vec![id("<|im_end|>")]);
    // No add_bos_token key: no BOS.
    assert_eq!(tok.encode_for_model("hello").unwrap(), vec![id("hello")]);
}

#[test]
fn add_bos_token_prepends_bos() {
    let mut meta = tiny_meta();
    meta.insert("tokenizer.ggml.add_bos_token".into(), Value::Bool(true));
    let tok = build(meta).unwrap();
    assert_eq!(
        tok.encode_for_model("hello").unwrap(),
        vec![id("<|im_start|>"), id("hello")]
    );
    assert_eq!(tok.encode("hello").unwrap(), vec![id("hello")]);
}

/// Applies `edit` to valid metadata and expects an input error on `field`.
fn expect_input_err(what: &str, field: &str, edit: impl FnOnce(&mut HashMap<String, Value>)) {
    let mut meta = tiny_meta();
    edit(&mut meta);
    match build(meta) {
        Err(Error::Input {
            file,
            field: f,
            msg,
        }) => {
            assert_eq!(file, "tiny.gguf", "{what}");
            assert_eq!(f, field, "{what}: {msg}");
        }
        Err(e) => panic!("{what}: expected an input error on {field}, got {e}"),
        Ok(_) => panic!("{what}: expected an input error on {field}, got a tokenizer"),
    }
}

#[test]
fn malformed_metadata_is_input_error() {
    let s = |x: &str| Value::String(x.into());
    let model = "tokenizer.ggml.model";
    let pre = "tokenizer.ggml.pre";
    let tokens = "tokenizer.ggml.tokens";
    let types = "tokenizer.ggml.token_type";
    let merges = "tokenizer.ggml.merges";
    let bos = "tokenizer.ggml.bos_token_id";
    let add_bos = "tokenizer.ggml.add_bos_token";
    expect_input_err("no model", model, |m| {
        m.remove(model);
    });
    // SentencePiece needs scores (this BPE metadata has none).
    expect_input_err("sentencepiece", "tokenizer.ggml.scores", |m| {
        m.insert(model.into(), s("llama"));
    });
    expect_input_err("unknown model", model, |m| {
        m.insert(model.into(), s("bert"));
    });
    expect_input_err("no pre", pre, |m| {
        m.remove(pre);
    });
    expect_input_err("unknown pre", pre, |m| {
        m.insert(pre.into(), s("llama-bpe"));
    });
    expect_input_err("pre not a string", pre, |m| {
        m.insert(pre.into(), Value::U32(2));
    });
    expect_input_err("no tokens", tokens, |m| {
        m.remove(tokens);
    });
    expect_input_err("empty tokens", tokens, |m| {
        m.insert(tokens.into(), Value::Array(vec![]));
    });
    expect_input_err("token not a string", tokens, |m| {
        m.insert(tokens.into(), Value::Array(vec![Value::U8(1)]));
    });
    expect_input_err("types too short", types, |m| {
        m.insert(types.into(), Value::Array(vec![Value::I32(1)]));
    });
    expect_input_err("no merges", merges, |m| {
        m.remove(merges);
    });
    expect_input_err("merge without space", merges, |m| {
        m.insert(merges.into(), strings(&["hex".into()]));
    });
    expect_input_err("merge of unknown token", merges, |m| {
        m.insert(merges.into(), strings(&["h zz".into()]));
    });
    expect_input_err("bos out of range", bos, |m| {
        m.insert(bos.into(), Value::U32(100_000));
    });
    expect_input_err("bos negative", bos, |m| {
        m.insert(bos.into(), Value::I32(-1));
    });
    expect_input_err("add_bos not a bool", add_bos, |m| {
        m.insert(add_bos.into(), s("yes"));
    });
}

#[test]
fn truncated_file_is_input_error() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vocab/ggml-vocab-gpt-2.gguf");
    let bytes = std::fs::read(&src).unwrap();
    let path =
        std::env::temp_dir().join(format!("kvlab-tok-truncated-{}.gguf", std::process::id()));
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let res = Tokenizer::from_gguf_file(&path);
    std::fs::remove_file(&path).unwrap();
    match res {
        Err(Error::Input { field, .. }) => assert_eq!(field, "gguf header"),
        Err(e) => panic!("expected an input error, got {e}"),
        Ok(_) => panic!("a truncated GGUF loaded"),
    }
}
