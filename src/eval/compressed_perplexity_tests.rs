use std::path::Path;

use super::compressed_perplexity::{compressed_perplexity, PressSpec};
use crate::error::Error;
use crate::kv::press::{Budget, Press};
use crate::model::{LoadOptions, Model};

fn model() -> Model {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny/llama_gqa_tied");
    Model::load_hf_dir(&dir, &LoadOptions::f32()).unwrap()
}

fn ids(n: usize) -> Vec<u32> {
    (0..n as u32).map(|i| (i * 37 + 11) % 253 + 3).collect()
}

fn run(
    m: &Model,
    press: &Press,
    ratio: f64,
    every: Option<usize>,
) -> super::compressed_perplexity::CompressedPerplexity {
    let b = Budget::ratio(ratio);
    let spec = PressSpec {
        press,
        budget: &b,
        press_every: every,
        inputs: Default::default(),
    };
    compressed_perplexity("t", m, &ids(200), 96, 2, Some(&spec)).unwrap()
}

#[test]
fn ratio_zero_is_exactly_uncompressed() {
    let m = model();
    let base = compressed_perplexity("t", &m, &ids(200), 96, 2, None).unwrap();
    assert_eq!(base.tokens, 2 * 48);
    for name in [
        "knorm",
        "snapkv",
        "expected_attention",
        "critical_snapkv",
        "streaming_llm",
    ] {
        let mut p = Press::from_name("t", name).unwrap();
        if let Press::SnapKv { window, .. } | Press::CriticalSnapKv { window, .. } = &mut p {
            *window = 16;
        }
        let r = run(&m, &p, 0.0, None);
        assert_eq!(r.nll_per_window, base.nll_per_window, "{name}");
        assert_eq!(r.ppl.to_bits(), base.ppl.to_bits(), "{name}");
        assert_eq!(r.bytes_after, r.bytes_before);
    }
    // A real compression changes the result and frees bytes.
    let r = run(&m, &Press::Knorm, 0.5, None);
    assert_ne!(r.ppl, base.ppl);
    assert_eq!(r.bytes_after[0] * 2, r.bytes_before[0]);
    // Decoding-time press: the cache is held at its post-prefill size.
    let e = run(&m, &Press::Knorm, 0.5, Some(8));
    assert!(e.ppl.is_finite() && e.ppl != r.ppl);
    // Ratio 0 with re-compression evicts nothing either (no_press used to
    // be cut back to the prefill's size, dropping the newest tokens); only
    // the chunked scoring differs from one forward.
    for p in [Press::NoPress, Press::Knorm] {
        let r = run(&m, &p, 0.0, Some(8));
        assert!(
            (r.ppl - base.ppl).abs() < 1e-4 * base.ppl,
            "{p:?}: {} vs {}",
            r.ppl,
            base.ppl
        );
    }
}

#[test]
fn bad_press_inputs_name_the_field() {
    let m = model();
    let field = |e: Error| match e {
        Error::Input { field, .. } => field,
        e => panic!("not an input error: {e}"),
    };
    let b = Budget::ratio(1.0);
    let spec = PressSpec {
        press: &Press::Knorm,
        budget: &b,
        press_every: None,
        inputs: Default::default(),
    };
    let e = compressed_perplexity("t", &m, &ids(200), 96, 1, Some(&spec)).unwrap_err();
    assert_eq!(field(e), "ratio");
    let b = Budget::tokens(49);
    let spec = PressSpec {
        press: &Press::Knorm,
        budget: &b,
        press_every: None,
        inputs: Default::default(),
    };
    let e = compressed_perplexity("t", &m, &ids(200), 96, 1, Some(&spec)).unwrap_err();
    assert_eq!(field(e), "budget");
    let b = Budget::ratio(0.5);
    let snap = Press::from_name("t", "snapkv").unwrap(); // window 64 >= 48 prefilled
    let spec = PressSpec {
        press: &snap,
        budget: &b,
        press_every: None,
        inputs: Default::default(),
    };
    let e = compressed_perplexity("t", &m, &ids(200), 96, 1, Some(&spec)).unwrap_err();
    assert_eq!(field(e), "window");
    assert_eq!(field(Press::from_name("t", "bogus").unwrap_err()), "press");
    let spec = PressSpec {
        press: &snap,
        budget: &b,
        press_every: Some(4),
        inputs: Default::default(),
    };
    let e = compressed_perplexity("t", &m, &ids(400), 192, 1, Some(&spec)).unwrap_err();
    assert_eq!(field(e), "press_every");
}
