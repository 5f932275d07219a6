//! The real SmolLM2-135M-Instruct GGUF: known facts and exact round trips.

use std::sync::{Arc, OnceLock};

use super::{ChatMessage, Tokenizer};
use crate::testutil::smollm2_gguf;

fn smollm2() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| Tokenizer::from_gguf_file(&smollm2_gguf()).unwrap())
}

#[test]
fn tokenizer_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Tokenizer>();
}

#[test]
fn known_facts() {
    let tok = smollm2();
    assert_eq!(tok.vocab_size(), 49_152);
    let n_special = (0..tok.vocab_size() as u32)
        .filter(|&i| tok.is_special(i))
        .count();
    assert_eq!(n_special, 17);
    assert_eq!(tok.bos_id(), Some(1));
    assert_eq!(tok.eos_id(), Some(2));
    // eos is <|im_end|>; <|endoftext|> (id 0) also stops.
    assert_eq!(tok.stop_ids(), vec![2, 0]);
    assert_eq!(tok.encode("<|im_start|>").unwrap(), vec![1]);
    assert_eq!(tok.token_text(1).as_deref(), Some("<|im_start|>"));
    assert_eq!(tok.token_text(49_152), None);
    assert!(tok.decode(&[49_152]).is_err());
    // add_bos_token is false in this file.
    assert_eq!(
        tok.encode_for_model("Hi").unwrap(),
        tok.encode("Hi").unwrap()
    );
}

#[test]
fn digits_are_split_one_by_one() {
    let tok = smollm2();
    let ids = tok.encode("12345").unwrap();
    assert_eq!(ids.len(), 5);
    let texts: Vec<String> = ids.iter().map(|&i| tok.token_text(i).unwrap()).collect();
    assert_eq!(texts, ["1", "2", "3", "4", "5"]);
    let ids = tok.encode("in 2024").unwrap();
    let texts: Vec<String> = ids.iter().map(|&i| tok.token_text(i).unwrap()).collect();
    assert_eq!(texts.concat(), "in 2024");
    assert_eq!(texts[texts.len() - 4..], ["2", "0", "2", "4"]);
}

#[test]
fn round_trips_are_exact() {
    let tok = smollm2();
    let cases = [
        "The quick brown fox jumps over the lazy dog.",
        "0123456789 3.14159 -42 1e10 1,000,000",
        "a  b   c\t\td\n\ne \r\n f    ",
        "   leading and trailing   ",
        "Café, naïve, résumé, Ærøskøbing, São Paulo, Zürich",
        "日本語のテキスト。中文文本，한국어",
        "Emoji: 🦀🚀👍🏽 👨‍👩‍👧 ❤️",
        "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
        "",
    ];
    for text in cases {
        let ids = tok.encode(text).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), text, "ids {ids:?}");
    }
    // Byte-level BPE never needs an unknown token, even for rare scripts.
    let ids = tok.encode("ᚠᛇᚻ 𓀀").unwrap();
    assert!(!ids.is_empty() && ids.iter().all(|&i| !tok.is_special(i)));
}

#[test]
fn special_tokens_split_the_text() {
    let tok = smollm2();
    let ids = tok.encode("hi<|im_end|>there").unwrap();
    let end = ids
        .iter()
        .position(|&i| i == 2)
        .expect("<|im_end|> recognized");
    assert_eq!(tok.decode(&ids[..end]).unwrap(), "hi");
    assert_eq!(tok.decode(&ids[end + 1..]).unwrap(), "there");
    // A near miss is plain text.
    let ids = tok.encode("<|im_end|").unwrap();
    assert!(ids.len() > 1 && ids.iter().all(|&i| !tok.is_special(i)));
}

#[test]
fn chat_template_round_trips() {
    let tok = smollm2();
    let msgs = [
        ChatMessage::new("user", "What is 2+2? Réponds en français 🙂"),
        ChatMessage::new("assistant", "4"),
        ChatMessage::new("user", "Thanks"),
    ];
    let text = tok.apply_chat_template(&msgs, true).unwrap();
    assert!(text.starts_with(
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    ));
    assert!(text.ends_with("<|im_start|>user\nThanks<|im_end|>\n<|im_start|>assistant\n"));
    let ids = tok.encode(&text).unwrap();
    assert_eq!(tok.decode(&ids).unwrap(), text);
    // 4 turns (default system + 3) and the generation prompt.
    assert_eq!(ids.iter().filter(|&&i| i == 1).count(), 5);
    assert_eq!(ids.iter().filter(|&&i| i == 2).count(), 4);
}

#[test]
fn shared_across_threads() {
    let tok = Arc::new(Tokenizer::from_gguf_file(&smollm2_gguf()).unwrap());
    let want = tok.encode("shared tokenizer 123").unwrap();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let tok = Arc::clone(&tok);
            std::thread::spawn(move || tok.encode("shared tokenizer 123").unwrap())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), want);
    }
}
