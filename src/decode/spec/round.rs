//! One draft -> verify -> rollback round (see the module docs of `spec`).

use super::context::Cx;
use super::proposer::{DraftKv, Proposer};
use super::recycle::keep_rejected_in_target;
use super::rekv;
use super::rollback::rollback_to;
use super::verdict::Verdict;
use super::verify_greedy::verify_greedy;
use super::verify_stochastic::verify_stochastic;
use crate::error::Result;
use crate::kv::KvCache;
use crate::model::{ForwardOpts, LayerInput, Logits, Model};
use std::time::Instant;

/// A verifying model and its cache, which holds the text's first `upto` tokens.
pub(crate) struct Verifier<'m> {
    pub model: &'m Model,
    pub cache: KvCache,
    pub upto: usize,
}

pub(crate) struct RoundOut {
    pub drafted: Vec<u32>,
    pub verdict: Verdict,
    /// The verifier's logits for window positions `0..=accepted`.
    pub rows: Vec<Vec<f32>>,
    /// Warped `rows` (stochastic mode only).
    pub p: Vec<Vec<f64>>,
    pub draft_ms: f64,
    pub verify_ms: f64,
    pub pending: Option<rekv::Pending>,
}

impl RoundOut {
    /// The tokens the round emits: accepted drafts, then the verdict's token.
    pub fn new_tokens(&self) -> Vec<u32> {
        let mut t = self.drafted[..self.verdict.accepted].to_vec();
        t.push(self.verdict.next);
        t
    }
}

/// One draft -> verify -> rollback round on `seq` (last token pending).
pub(crate) fn round(
    v: &mut Verifier,
    proposer: &mut dyn Proposer,
    seq: &[u32],
    gamma: usize,
    cx: &mut Cx,
    round_idx: usize,
) -> Result<RoundOut> {
    let pend = seq.len() - 1;
    let t0 = Instant::now();
    let prop = proposer.propose(seq, gamma, &mut v.cache, v.upto, cx)?;
    let draft_ms = t0.elapsed().as_secs_f64() * 1e3;
    let t1 = Instant::now();
    let n = prop.tokens.len();
    let start = v.upto;
    let pos: Vec<i64> = (start as i64..(pend + n + 1) as i64).collect();
    let logits = match &prop.hidden {
        Some((h, layer)) => {
            let l = v.model.config().n_layers;
            v.model
                .forward_layers(
                    LayerInput::Hidden(h),
                    &pos,
                    &mut v.cache,
                    *layer..l,
                    Logits::All,
                )?
                .1
        }
        None => {
            let mut ids = seq[start..].to_vec();
            ids.extend_from_slice(&prop.tokens);
            let o = ForwardOpts {
                logits: Logits::All,
                ..Default::default()
            };
            v.model.forward(&ids, &pos, &mut v.cache, &o)?.logits
        }
    }
    .expect("Logits::All requested");
    cx.counters.target_forwards += 1;
    let rows: Vec<Vec<f32>> = logits.narrow(0, pos.len() - n - 1, n + 1)?.to_vec2()?;
    let (verdict, p) = if cx.warp.is_greedy() {
        (verify_greedy(&prop.tokens, &rows), vec![])
    } else {
        let p: Vec<Vec<f64>> = rows.iter().map(|r| cx.warp.probs(r)).collect();
        let v = verify_stochastic(&prop.tokens, &prop.q, &p, &mut cx.rng);
        (v, p)
    };
    let k = verdict.accepted;
    let at = pend + 1 + k;
    let pending = if cx.rekv && k < n {
        let target_rejected = rekv::kv_at(&v.cache, at as i64)?.expect("just verified");
        let draft_rejected = match proposer.kv(at as i64)? {
            DraftKv::None => None,
            DraftKv::Own(rows, ld) => Some((rows, Some(ld))),
            DraftKv::Shared(nl) => {
                let mut r = target_rejected.clone();
                r.layers.truncate(nl);
                Some((r, None))
            }
        };
        Some(rekv::Pending {
            round: round_idx,
            window_pos: k,
            abs_pos: at,
            draft_token: prop.tokens[k],
            draft_conf: prop.conf.get(k).copied().unwrap_or(f32::NAN),
            target_rank: rekv::rank_of(&rows[k], prop.tokens[k]),
            target_rejected,
            draft_rejected,
        })
    } else {
        None
    };
    match cx.recycle_target {
        Some(from) if k < n => {
            if keep_rejected_in_target(&mut v.cache, at, from) {
                cx.counters.target_recycled += 1;
            }
        }
        _ => rollback_to(&mut v.cache, at),
    }
    v.upto = at;
    let mut new_seq = seq.to_vec();
    new_seq.extend_from_slice(&prop.tokens[..k]);
    new_seq.push(verdict.next);
    let recycle = (cx.recycle && k < n).then_some((k, pend));
    proposer.commit(&new_seq, recycle, cx)?;
    let verify_ms = t1.elapsed().as_secs_f64() * 1e3;
    let mut rows = rows;
    rows.truncate(k + 1);
    Ok(RoundOut {
        drafted: prop.tokens,
        verdict,
        rows,
        p,
        draft_ms,
        verify_ms,
        pending,
    })
}
