//! Presses on the real default model (SmolLM2-135M, Q4_1): every press runs
//! end to end through `compressed_perplexity`, ratio 0 is exactly the
//! uncompressed protocol, and compression halves the bytes held.
//! Measured (256-token window, 128 prefilled, ratio 0.5): none 17.22, tova
//! 17.37, observed 17.51, expected 17.55, knorm 18.15, hybrid 18.51,
//! streaming 18.71, keydiff 19.39, random 72.7; snapkv / pyramidkv /
//! critical_snapkv 47.3: with window 64 of 128 at 0.5 they keep exactly the
//! window and lose the sinks (kvpress does the same).

use super::compressed_perplexity::{compressed_perplexity, PressSpec};
use crate::kv::press::{Budget, Press};
use crate::model::{LoadOptions, Model};
use crate::testutil::smollm2_gguf;
use crate::tokenizer::Tokenizer;

const TEXT: &str = "Alice was beginning to get very tired of sitting by her sister on the bank, \
and of having nothing to do: once or twice she had peeped into the book her sister was reading, \
but it had no pictures or conversations in it, and what is the use of a book, thought Alice, \
without pictures or conversations? So she was considering in her own mind (as well as she could, \
for the hot day made her feel very sleepy and stupid), whether the pleasure of making a \
daisy-chain would be worth the trouble of getting up and picking the daisies, when suddenly a \
White Rabbit with pink eyes ran close by her. There was nothing so very remarkable in that; nor \
did Alice think it so very much out of the way to hear the Rabbit say to itself, Oh dear! Oh \
dear! I shall be late! (when she thought it over afterwards, it occurred to her that she ought to \
have wondered at this, but at the time it all seemed quite natural); but when the Rabbit actually \
took a watch out of its waistcoat-pocket, and looked at it, and then hurried on, Alice started to \
her feet, for it flashed across her mind that she had never before seen a rabbit with either a \
waistcoat-pocket, or a watch to take out of it, and burning with curiosity, she ran across the \
field after it, and fortunately was just in time to see it pop down a large rabbit-hole under \
the hedge. In another moment down went Alice after it, never once considering how in the world \
she was to get out again.";

#[test]
fn smollm2_presses_run_and_ratio_zero_is_exact() {
    let path = smollm2_gguf();
    let m = Model::load_gguf(&path, &LoadOptions::quantized()).unwrap();
    let ids = Tokenizer::from_gguf_file(&path)
        .unwrap()
        .encode(TEXT)
        .unwrap();
    let window = 256.min(ids.len() / 2 * 2);
    assert!(window >= 200, "text too short: {} tokens", ids.len());
    let base = compressed_perplexity("t", &m, &ids, window, 1, None).unwrap();
    let run = |name: &str, r: f64| {
        let press = Press::from_name("t", name).unwrap();
        let b = Budget::ratio(r);
        let spec = PressSpec {
            press: &press,
            budget: &b,
            press_every: None,
            inputs: Default::default(),
        };
        compressed_perplexity("t", &m, &ids, window, 1, Some(&spec)).unwrap()
    };
    assert_eq!(run("snapkv", 0.0).ppl.to_bits(), base.ppl.to_bits());
    eprintln!(
        "no compression: ppl {:.3} over {} tokens",
        base.ppl, base.tokens
    );
    for name in [
        "random",
        "streaming_llm",
        "knorm",
        "snapkv",
        "tova",
        "observed_attention",
        "expected_attention",
        "pyramidkv",
        "critical_snapkv",
        "keydiff",
        "lagkv",
        "hybrid",
    ] {
        let r = run(name, 0.5);
        eprintln!("{name:20} ratio 0.5: ppl {:.3}", r.ppl);
        assert!(r.ppl.is_finite() && r.ppl > 1.0, "{name}: ppl {}", r.ppl);
        assert!(
            r.bytes_after[0] * 2 <= r.bytes_before[0] + r.bytes_before[0] / 50,
            "{name}"
        );
    }
}
