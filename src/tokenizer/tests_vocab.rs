//! Exact ids against llama.cpp's tokenizer test vectors (tests/data/vocab/,
//! from llama.cpp's `models/ggml-vocab-*.gguf{,.inp,.out}`): byte-level BPE
//! (gpt-2, qwen2) and SentencePiece (llama-spm).

use std::io::Cursor;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::Content;

use super::Tokenizer;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vocab")
}

/// Loads `ggml-vocab-<name>.gguf`, or its `.zst` compressed form.
fn load_vocab(name: &str) -> Tokenizer {
    let plain = data_dir().join(format!("ggml-vocab-{name}.gguf"));
    if plain.is_file() {
        return Tokenizer::from_gguf_file(&plain).unwrap();
    }
    let zst = plain.with_extension("gguf.zst");
    let bytes = std::fs::read(&zst).unwrap_or_else(|e| panic!("{}: {e}", zst.display()));
    let raw = zstd::decode_all(bytes.as_slice()).unwrap();
    let content = Content::read(&mut Cursor::new(raw)).unwrap();
    Tokenizer::from_gguf(&content, &zst).unwrap()
}

/// Cases as llama.cpp's test-tokenizer-0 reads them: inputs separated by
/// "\n__ggml_vocab_test__\n" (a trailing empty piece is not a case), outputs
/// one line of space-separated ids per case.
fn load_cases(name: &str) -> Vec<(String, Vec<u32>)> {
    let read = |ext: &str| {
        let p = data_dir().join(format!("ggml-vocab-{name}.gguf.{ext}"));
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let raw = read("inp");
    let mut inputs: Vec<&str> = raw.split("\n__ggml_vocab_test__\n").collect();
    if inputs.last() == Some(&"") {
        inputs.pop();
    }
    let outputs = read("out");
    let outputs: Vec<&str> = outputs.lines().collect();
    assert_eq!(
        inputs.len(),
        outputs.len(),
        "{name}: .inp and .out disagree on the number of cases"
    );
    inputs
        .into_iter()
        .zip(outputs)
        .map(|(i, o)| {
            let ids = o.split_whitespace().map(|t| t.parse().unwrap()).collect();
            (i.to_owned(), ids)
        })
        .collect()
}

/// Every case must encode to exactly llama.cpp's ids and decode back to the input.
fn check_vocab(name: &str) {
    check_vocab_decoding(name, |t| t.to_owned());
}

/// As [`check_vocab`], with the text each case decodes back to.
fn check_vocab_decoding(name: &str, decoded: fn(&str) -> String) {
    let tok = load_vocab(name);
    let cases = load_cases(name);
    assert!(cases.len() > 30, "{name}: only {} cases", cases.len());
    let mut failures = Vec::new();
    let mut exact = 0;
    for (text, want) in &cases {
        let got = tok.encode(text).unwrap();
        let back = tok.decode(&got).unwrap();
        if &got != want {
            failures.push(format!("{text:?}\n  want {want:?}\n  got  {got:?}"));
        }
        let text_back = decoded(text);
        if back != text_back {
            failures.push(format!("{text:?} decoded as {back:?}"));
        }
        exact += usize::from(&got == want && back == text_back);
    }
    println!(
        "{name}: {exact}/{} cases exact (ids and round trip)",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{name}: {} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn gpt2_vocab_matches_llama_cpp() {
    check_vocab("gpt-2");
}

#[test]
fn qwen2_vocab_matches_llama_cpp() {
    check_vocab("qwen2");
}

#[test]
fn qwen2_metadata_and_specials() {
    let tok = load_vocab("qwen2");
    assert_eq!(tok.vocab_size(), 151_936);
    assert_eq!(tok.eos_id(), Some(151_643));
    let ids = tok.encode("<|im_start|>user\nhi<|im_end|>").unwrap();
    assert_eq!(ids.first(), Some(&151_644));
    assert_eq!(ids.last(), Some(&151_645));
    assert!(tok.is_special(151_644) && !tok.is_special(0));
    assert_eq!(tok.stop_ids(), vec![151_643, 151_645]);
    let chat = tok
        .apply_chat_template(&[super::ChatMessage::new("user", "hi")], true)
        .unwrap();
    assert_eq!(
        chat,
        "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n\
         <|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn gpt2_vocab_has_no_chat_template() {
    let tok = load_vocab("gpt-2");
    let e = tok.apply_chat_template(&[], true).unwrap_err();
    assert!(
        matches!(&e, crate::Error::Input { field, .. } if field == "tokenizer.chat_template"),
        "{e}"
    );
    // Only <|endoftext|> is special; it is both EOS and the stop id.
    assert_eq!(tok.stop_ids(), vec![50_256]);
    assert_eq!(tok.encode("<|endoftext|>").unwrap(), vec![50_256]);
}

/// SentencePiece from GGUF scores (`tokenizer.ggml.model = llama`, the
/// tokenizer Gemma 3 uses) against llama.cpp's Llama SPM vectors. The vocab
/// asks for a space prefix, so a non-empty text decodes with a leading space:
/// kvlab's decode keeps it, as a continuation's first piece needs it.
#[test]
fn llama_spm_vocab_matches_llama_cpp() {
    check_vocab_decoding("llama-spm", |t| {
        if t.is_empty() {
            String::new()
        } else {
            format!(" {t}")
        }
    });
}

#[test]
fn llama_spm_metadata() {
    let tok = load_vocab("llama-spm");
    assert_eq!(tok.vocab_size(), 32_000);
    assert_eq!(tok.bos_id(), Some(1));
    assert_eq!(tok.eos_id(), Some(2));
    // BOS first, as llama.cpp's SPM adds it; byte fallback for a character
    // outside the vocabulary (U+10FFFD: four <0xXX> pieces after "▁").
    assert_eq!(
        tok.encode_for_model("Hello world").unwrap(),
        vec![1, 15_043, 3_186]
    );
    let ids = tok.encode("\u{10FFFD}").unwrap();
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert_eq!(tok.decode(&ids).unwrap(), " \u{10FFFD}");
}
