//! The press during generation on the tiny fixtures: ratio 0 is exactly
//! plain decoding (plain and speculative, every cache); a real press frees
//! cache bytes and keeps the speculative counters consistent; settings a
//! generation cannot honour are input errors naming the field.

use super::cache_press::{DecodePress, PressRunner};
use super::generate::{generate, generate_with, GenerateOpts};
use super::method::{decode, Decoding, Helpers, Speculation};
use super::spec::test_support::*;
use super::spec::{speculative_generate, speculative_generate_with, Draft, GammaSchedule};

fn press(name: &str, ratio: f64, on: &str, every: usize) -> DecodePress {
    DecodePress {
        name: name.into(),
        ratio,
        on: on.into(),
        every,
    }
}

fn plain_opts(n: usize) -> GenerateOpts {
    GenerateOpts {
        max_new_tokens: n,
        temperature: 0.0,
        seed: 0,
        stop_ids: vec![],
    }
}

#[test]
fn ratio_zero_is_exactly_plain_decoding() {
    let t = target();
    let small = small_model();
    let want = generate(&t, &PROMPT, &plain_opts(32)).unwrap().new_ids;
    for on in ["target", "draft", "both"] {
        let p = press("knorm", 0.0, on, 4);
        assert!(
            PressRunner::new(&p, "t").unwrap().is_none(),
            "ratio 0 is no press"
        );
        let d = Decoding {
            max_new_tokens: 32,
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
            stop_ids: vec![],
            dtype: "f32".into(),
            kv_dtype: "auto".into(),
            spec: Some(Speculation {
                draft: "model".into(),
                gamma: 4,
                dynamic_gamma: "off".into(),
                gamma_floor: 4,
                gamma_cap: 16,
                self_spec_layers: 1,
                lookup_ngram: 3,
                intermediate: false,
                rekv: false,
                recycle: "off".into(),
                recycle_from_layer: 0,
            }),
            press: Some(p),
        };
        let h = Helpers {
            draft: Some(&small),
            intermediate: None,
        };
        let g = decode(&t, h, &PROMPT, &d, "t").unwrap();
        assert_eq!(g.new_ids, want, "press on {on}");
        if on == "target" {
            let mut plain = d.clone();
            plain.spec = None;
            let g = decode(&t, Helpers::default(), &PROMPT, &plain, "t").unwrap();
            assert_eq!(g.new_ids, want, "plain with a ratio-0 press");
        }
    }
}

#[test]
fn a_press_frees_cache_bytes_and_rounds_still_add_up() {
    let t = target();
    let small = small_model();
    let n = 40;
    let d = model_draft(&small, "small");
    let o = greedy_opts(n, GammaSchedule::Fixed(4));
    let base = speculative_generate(&t, &d, &PROMPT, &o).unwrap();
    for on in ["target", "draft", "both"] {
        let mut r = PressRunner::new(&press("streaming_llm", 0.5, on, 8), "t")
            .unwrap()
            .unwrap();
        let g = speculative_generate_with(&t, &d, &PROMPT, &o, &mut r).unwrap();
        assert_eq!(g.new_ids.len(), n, "{on}");
        for x in &g.rounds {
            assert_eq!(x.drafted, x.accepted + x.rejected, "{on} {x:?}");
        }
        let emitted: usize = g.rounds.iter().map(|x| x.emitted).sum();
        assert_eq!(emitted + 1, n, "{on}");
        assert!(
            r.compressions >= 2,
            "{on}: re-compressed: {}",
            r.compressions
        );
        if on != "draft" {
            assert!(g.kv_bytes < base.kv_bytes, "{on}: target bytes");
        } else {
            // The target stays exact, so greedy output does too.
            assert_eq!(g.new_ids, base.new_ids);
            assert_eq!(g.kv_bytes, base.kv_bytes);
        }
        if on != "target" {
            assert!(g.draft_kv_bytes < base.draft_kv_bytes, "{on}: draft bytes");
        }
    }
    // Plain decoding with re-compression holds the cache near its budget.
    let full = generate(&t, &PROMPT, &plain_opts(n)).unwrap();
    let mut r = PressRunner::new(&press("knorm", 0.5, "target", 4), "t")
        .unwrap()
        .unwrap();
    let g = generate_with(&t, &PROMPT, &plain_opts(n), &mut r).unwrap();
    assert_eq!(g.new_ids.len(), n);
    assert!(
        g.kv_bytes * 2 < full.kv_bytes,
        "{} vs {}",
        g.kv_bytes,
        full.kv_bytes
    );
}

#[test]
fn settings_a_generation_cannot_honour_name_the_field() {
    let field = |p: DecodePress| p.check().map(|_| ()).unwrap_err().0;
    assert_eq!(field(press("snapkv", 0.5, "target", 0)), "press");
    assert_eq!(field(press("bogus", 0.5, "target", 0)), "press");
    assert_eq!(field(press("knorm", 1.0, "target", 0)), "press_ratio");
    assert_eq!(field(press("knorm", 0.5, "middle", 0)), "press_on");
    // Self-speculation has no draft cache of its own.
    let t = target();
    let mut r = PressRunner::new(&press("knorm", 0.5, "draft", 0), "t")
        .unwrap()
        .unwrap();
    let o = greedy_opts(8, GammaSchedule::Fixed(2));
    let e = speculative_generate_with(&t, &Draft::SelfSpec { layers: 1 }, &PROMPT, &o, &mut r)
        .unwrap_err();
    assert!(e.to_string().contains("press_on"), "{e}");
    // A sink count not below the prompt: the press's own field.
    let mut r = PressRunner::new(&press("streaming_llm", 0.5, "target", 0), "t")
        .unwrap()
        .unwrap();
    let e = generate_with(&t, &PROMPT[..3], &plain_opts(4), &mut r).unwrap_err();
    assert!(e.to_string().contains("n_sink"), "{e}");
}
