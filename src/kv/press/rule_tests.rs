//! The presses kvpress does not have (seed 002's anchor rules, seed 004's
//! hybrid) and no_press, on a small hand-made cache.

use candle_core::{DType, Device, Tensor};

use super::{apply, AnchorRule, Budget, Observed, Press};
use crate::kv::{KvCache, Rope};

/// One layer, one KV head, `n` entries; key j has norm `norms[j]`.
fn cache(norms: &[f32]) -> KvCache {
    let n = norms.len();
    let mut c = KvCache::new(1, 1, 2, DType::F32, &Device::Cpu, Rope::new(2, 10000.0));
    let k: Vec<f32> = norms.iter().flat_map(|&x| [x, 0.0]).collect();
    let k = Tensor::from_vec(k, (1, n, 2), &Device::Cpu).unwrap();
    let pos: Vec<i64> = (0..n as i64).collect();
    c.append(0, &k, &k, &pos).unwrap();
    c
}

fn kept(press: &Press, keep: usize, norms: &[f32], obs: &Observed) -> Vec<i64> {
    let mut c = cache(norms);
    let st = apply(&mut c, press, &Budget::tokens(keep), obs).unwrap();
    assert_eq!(st.bytes_after * norms.len(), st.bytes_before * keep);
    c.positions(0).to_vec()
}

fn obs(attn: Option<Vec<f32>>, anchors: Option<Vec<bool>>) -> Observed {
    Observed {
        n_heads: 1,
        attention: attn.map(|a| vec![vec![a]]).unwrap_or_default(),
        anchors,
        ..Default::default()
    }
}

const NORMS: [f32; 10] = [9.0, 1.0, 5.0, 0.5, 7.0, 2.0, 8.0, 3.0, 6.0, 4.0];

#[test]
fn no_press_keeps_the_oldest_on_a_budget() {
    assert_eq!(
        kept(&Press::NoPress, 4, &NORMS, &obs(None, None)),
        vec![0, 1, 2, 3]
    );
}

#[test]
fn hybrid_keeps_the_window_and_low_norm_middle() {
    let p = Press::Hybrid {
        n_sink: 1,
        recent: 2,
    };
    // Sink 0, recent 8 and 9, then the two smallest norms of 1..8: 3 and 1.
    assert_eq!(kept(&p, 5, &NORMS, &obs(None, None)), vec![0, 1, 3, 8, 9]);
}

#[test]
fn anchor_rules_a_b_c() {
    let types = vec![
        false, false, false, false, true, false, false, false, false, false,
    ];
    let attn = vec![0.0, 0.1, 0.9, 0.2, 0.0, 0.8, 0.3, 0.0, 0.1, 0.05];
    let o = obs(Some(attn), Some(types));
    let rule = |rule| Press::Anchor {
        rule,
        n_sink: 1,
        recent: 2,
    };
    // A: sink 0, punctuation 4, recent 8, 9 (anchors), then the most recent: 7.
    assert_eq!(
        kept(&rule(AnchorRule::A), 5, &NORMS, &o),
        vec![0, 4, 7, 8, 9]
    );
    // B: attention top-5.
    assert_eq!(
        kept(&rule(AnchorRule::B), 5, &NORMS, &o),
        vec![1, 2, 3, 5, 6]
    );
    // C: the four fixed anchors, then the best-attended other: 2.
    assert_eq!(
        kept(&rule(AnchorRule::C), 5, &NORMS, &o),
        vec![0, 2, 4, 8, 9]
    );
}
