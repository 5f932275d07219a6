//! ReKV events checked against K/V recomputed from scratch.

use super::tests::{fixture, greedy_opts, target, PROMPT};
use super::*;
use crate::model::LoadOptions;

/// K or V `[kv_heads * head_dim]` of the last of `ids` at `layer`, fresh cache.
fn fresh_kv(m: &Model, ids: &[u32], layer: usize, is_k: bool) -> Vec<f32> {
    let mut c = m.new_cache();
    let pos: Vec<i64> = (0..ids.len() as i64).collect();
    let o = ForwardOpts {
        logits: Logits::None,
        ..Default::default()
    };
    m.forward(ids, &pos, &mut c, &o).unwrap();
    let rows = rekv::kv_at(&c, ids.len() as i64 - 1).unwrap().unwrap();
    let l = rows.layers[layer].clone().unwrap();
    if is_k {
        l.k
    } else {
        l.v
    }
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    let d: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    d / (n(a) * n(b))
}

#[test]
fn rekv_events_match_recomputed_kv() {
    let t = target();
    let small = fixture("llama_untied", &LoadOptions::f32());
    let d = Draft::Model {
        model: &small,
        name: "small".into(),
    };
    let mut o = greedy_opts(40, GammaSchedule::Fixed(4));
    let base = speculative_generate(&t, &d, &PROMPT, &o).unwrap();
    assert!(base.rekv.is_empty(), "instrumentation is off by default");
    o.rekv = true;
    let g = speculative_generate(&t, &d, &PROMPT, &o).unwrap();
    assert_eq!(g.new_ids, base.new_ids);
    let rejections: Vec<&RoundStats> = g.rounds.iter().filter(|r| r.rejected > 0).collect();
    assert!(rejections.len() >= 3, "too few rejections to test");
    // Per rejection: 3 target layers x 2 heads same_model, 2 draft layers x
    // min(4, 2) heads cross_model.
    let same = g.rekv.iter().filter(|e| e.mode == "same_model").count();
    let cross = g.rekv.iter().filter(|e| e.mode == "cross_model").count();
    assert_eq!(same, 6 * rejections.len());
    assert_eq!(cross, 4 * rejections.len());
    let text: Vec<u32> = PROMPT.iter().chain(&g.new_ids).copied().collect();
    for e in &g.rekv {
        let r = &g.rounds[e.round];
        assert_eq!(r.rejected_at, Some(e.window_pos));
        assert_eq!(text[e.abs_pos], e.target_token);
        assert_ne!(e.draft_token, e.target_token);
        assert!(e.target_rank >= 2, "a greedy rejection is never the argmax");
        assert!(e.draft_conf > 0.0 && e.draft_conf <= 1.0);
        assert!((-1.0..=1.0).contains(&e.cos_k) && (-1.0..=1.0).contains(&e.cos_v));
        assert!(e.l2_k >= 0.0 && !e.head_dim_mismatch);
        if e.mode == "cross_model" {
            assert_eq!(e.layer_target, rekv::map_layer(e.layer_draft, 2, 3));
        }
    }
    // Recompute every value of the first two rejections from scratch.
    let first: Vec<usize> = rejections.iter().take(2).map(|r| r.round).collect();
    for e in g.rekv.iter().filter(|e| first.contains(&e.round)) {
        let mut rejected: Vec<u32> = text[..e.abs_pos].to_vec();
        rejected.push(e.draft_token);
        let truth = &text[..=e.abs_pos];
        let src = if e.mode == "same_model" { &t } else { &small };
        for (is_k, got) in [(true, e.cos_k), (false, e.cos_v)] {
            let a = fresh_kv(src, &rejected, e.layer_draft, is_k);
            let b = fresh_kv(&t, truth, e.layer_target, is_k);
            let hd = 16;
            let want = cos(
                &a[e.head * hd..(e.head + 1) * hd],
                &b[e.head * hd..(e.head + 1) * hd],
            );
            assert!((want - got).abs() < 1e-4, "{e:?}: recomputed cos {want}");
        }
    }
}

#[test]
fn self_spec_cross_model_is_the_identity_over_shared_layers() {
    let t = target();
    let mut o = greedy_opts(40, GammaSchedule::Fixed(4));
    o.rekv = true;
    let g = speculative_generate(&t, &Draft::SelfSpec { layers: 1 }, &PROMPT, &o).unwrap();
    let n_rej = g.rounds.iter().filter(|r| r.rejected > 0).count();
    assert!(n_rej > 0);
    let cross: Vec<_> = g.rekv.iter().filter(|e| e.mode == "cross_model").collect();
    assert_eq!(cross.len(), 2 * n_rej, "1 draft layer x 2 heads");
    for c in cross {
        assert_eq!(c.layer_target, c.layer_draft);
        let s = g
            .rekv
            .iter()
            .find(|e| {
                e.mode == "same_model"
                    && e.round == c.round
                    && e.layer_target == 0
                    && e.head == c.head
            })
            .unwrap();
        assert_eq!(
            (s.cos_k, s.cos_v, s.l2_k, s.l2_v),
            (c.cos_k, c.cos_v, c.l2_k, c.l2_v)
        );
    }
    // Prompt lookup has no draft K/V: same_model rows only.
    let mut o = greedy_opts(40, GammaSchedule::Fixed(4));
    o.rekv = true;
    let g = speculative_generate(&t, &Draft::Lookup { ngram: 1 }, &PROMPT, &o).unwrap();
    assert!(g.rekv.iter().all(|e| e.mode == "same_model"));
}
