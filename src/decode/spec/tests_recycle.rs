//! Target recycling on the tiny fixtures: the target's deeper layers keep
//! the rejected token's K/V instead of the emitted token's (checked on the
//! cache), the output is plain greedy decoding up to the first substitution,
//! the counters still add up, and bad settings name the field.

use super::recycle::keep_rejected_in_target;
use super::rekv::kv_at;
use super::test_support::*;
use super::*;
use crate::decode::generate::{generate, GenerateOpts};

fn plain(m: &Model, n: usize) -> Vec<u32> {
    let o = GenerateOpts {
        max_new_tokens: n,
        temperature: 0.0,
        seed: 0,
        stop_ids: vec![],
    };
    generate(m, &PROMPT, &o).unwrap().new_ids
}

#[test]
fn the_kept_entry_stands_in_for_the_next_token_in_deep_layers_only() {
    let t = target(); // 3 layers
    let mut c = t.new_cache();
    let n = PROMPT.len();
    let pos: Vec<i64> = (0..n as i64).collect();
    t.forward(&PROMPT, &pos, &mut c, &ForwardOpts::default())
        .unwrap();
    // A "rejected" token at position n, then the emitted one in its place.
    let at = n as i64;
    t.forward(&[77], &[at], &mut c, &ForwardOpts::default())
        .unwrap();
    let rejected = kv_at(&c, at).unwrap().unwrap();
    assert!(keep_rejected_in_target(&mut c, n, 2));
    assert_eq!(c.len(0), n, "shallow layers dropped it");
    assert_eq!(c.len(2), n + 1, "deep layer kept it");
    t.forward(&[5, 6], &[at, at + 1], &mut c, &ForwardOpts::default())
        .unwrap();
    let now = kv_at(&c, at).unwrap().unwrap();
    let (r2, n2) = (rejected.layers[2].as_ref(), now.layers[2].as_ref());
    assert_eq!(r2.unwrap().k, n2.unwrap().k, "layer 2 kept the rejected K");
    let (r0, n0) = (rejected.layers[0].as_ref(), now.layers[0].as_ref());
    assert_ne!(
        r0.unwrap().k,
        n0.unwrap().k,
        "layer 0 computed the new token's K"
    );
    for l in 0..3 {
        assert_eq!(
            c.positions(l).len(),
            n + 2,
            "one entry per position, layer {l}"
        );
    }
}

#[test]
fn target_recycling_is_exact_until_the_first_substitution() {
    let t = target();
    let small = small_model();
    let d = model_draft(&small, "small");
    let n = 48;
    let want = plain(&t, n);
    for (gamma, mode) in [
        (3, Recycle::Target { from_layer: 2 }),
        (6, Recycle::Target { from_layer: 1 }),
        (4, Recycle::Both { from_layer: 2 }),
    ] {
        let mut o = greedy_opts(n, GammaSchedule::Fixed(gamma));
        let base = speculative_generate(&t, &d, &PROMPT, &o).unwrap();
        assert_eq!(base.new_ids, want);
        o.recycle = mode;
        let g = speculative_generate(&t, &d, &PROMPT, &o).unwrap();
        assert!(g.counters.target_recycled > 0, "{mode:?}: nothing kept");
        assert_eq!(g.counters.draft_steps_saved > 0, mode.draft(), "{mode:?}");
        // Up to the first rejection's correction the target's cache is exact.
        let first = base.rounds.iter().position(|r| r.rejected > 0).unwrap();
        let upto = 1 + base.rounds[..=first]
            .iter()
            .map(|r| r.emitted)
            .sum::<usize>();
        assert_eq!(g.new_ids[..upto], want[..upto], "{mode:?}");
        assert_eq!(g.new_ids.len(), n);
        let emitted: usize = g.rounds.iter().map(|r| r.emitted).sum();
        assert_eq!(emitted + 1, n);
        for r in &g.rounds {
            assert_eq!(r.drafted, r.accepted + r.rejected, "{r:?}");
        }
    }
    // Bad settings name the field.
    let mut o = greedy_opts(8, GammaSchedule::Fixed(3));
    o.recycle = Recycle::Target { from_layer: 3 };
    let e = speculative_generate(&t, &d, &PROMPT, &o).unwrap_err();
    assert!(e.to_string().contains("recycle_from_layer"), "{e}");
    o.recycle = Recycle::Target { from_layer: 1 };
    o.rekv = true;
    let e = speculative_generate(&t, &d, &PROMPT, &o).unwrap_err();
    assert!(e.to_string().contains("recycle"), "{e}");
    // Target recycling works for a draft without a cache of its own too.
    o.rekv = false;
    assert!(speculative_generate(&t, &Draft::SelfSpec { layers: 1 }, &PROMPT, &o).is_ok());
}
