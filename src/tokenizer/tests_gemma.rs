//! The SentencePiece tokenizer of the Gemma 3 270M GGUF (KVLAB_GEMMA3_GGUF;
//! skipped without it) against transformers' ids and text in
//! tests/fixtures/gemma3/greedy.json.

use std::path::PathBuf;

use super::Tokenizer;

#[test]
fn gemma3_spm_matches_transformers() {
    let Some(path) = std::env::var_os("KVLAB_GEMMA3_GGUF").map(PathBuf::from) else {
        println!("KVLAB_GEMMA3_GGUF not set: skipped");
        return;
    };
    let fx = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gemma3/greedy.json");
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fx).unwrap()).unwrap();
    let tok = Tokenizer::from_gguf_file(&path).unwrap();
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    for case in j["cases"].as_array().unwrap() {
        let prompt = case["prompt"].as_str().unwrap();
        assert_eq!(
            tok.encode_for_model(prompt).unwrap(),
            ids(&case["prompt_ids"])
        );
        let text = tok.decode(&ids(&case["new_ids"])).unwrap();
        assert_eq!(text, case["text"].as_str().unwrap());
    }
    // Byte fallback: a character outside the vocabulary round-trips.
    let s = "a \u{10FFFD} b";
    assert_eq!(tok.decode(&tok.encode(s).unwrap()).unwrap(), s);
}
