//! Multi-level speculation (seed 004): draft -> intermediate -> target. The
//! intermediate verifies the draft's proposals in rounds of its own; what it
//! emits (accepted drafts plus its correction or bonus) is proposed to the
//! target, which verifies it as usual.
//!
//! Exactness in stochastic mode: the intermediate's rounds emit tokens
//! distributed exactly as sampling from the intermediate, so each proposed
//! token's q is the intermediate's warped distribution at that position.

use super::context::Cx;
use super::proposer::{DraftKv, Proposal, Proposer};
use super::rollback::{common_prefix, rollback_to};
use super::round::{round, Verifier};
use crate::decode::sampling::probabilities;
use crate::error::Result;
use crate::kv::KvCache;
use crate::model::Model;

pub(crate) struct CascadeProposer<'m> {
    inner: Box<dyn Proposer + 'm>,
    mid: Verifier<'m>,
    /// The text whose first `mid.upto` tokens the intermediate's cache holds.
    text: Vec<u32>,
}

impl<'m> CascadeProposer<'m> {
    pub fn new(inner: Box<dyn Proposer + 'm>, intermediate: &'m Model) -> Self {
        CascadeProposer {
            inner,
            mid: Verifier {
                model: intermediate,
                cache: intermediate.new_cache(),
                upto: 0,
            },
            text: vec![],
        }
    }
}

impl Proposer for CascadeProposer<'_> {
    fn propose(
        &mut self,
        seq: &[u32],
        gamma: usize,
        _: &mut KvCache,
        _: usize,
        cx: &mut Cx,
    ) -> Result<Proposal> {
        let mut out = Proposal::empty();
        let mut s = seq.to_vec();
        // The intermediate's rounds are not instrumented (rekv is the target's).
        let (rekv, recycle, target) = (cx.rekv, cx.recycle, cx.recycle_target);
        cx.rekv = false;
        cx.recycle = false;
        cx.recycle_target = None;
        'rounds: while out.tokens.len() < gamma {
            let before = cx.counters.target_forwards;
            let r = round(
                &mut self.mid,
                &mut *self.inner,
                &s,
                gamma - out.tokens.len(),
                cx,
                0,
            )?;
            // The intermediate's forwards are the draft side of the target's round.
            cx.counters.intermediate_forwards += cx.counters.target_forwards - before;
            cx.counters.target_forwards = before;
            cx.counters.inner_drafted += r.drafted.len();
            cx.counters.inner_accepted += r.verdict.accepted;
            for (j, t) in r.new_tokens().into_iter().enumerate() {
                if out.tokens.len() == gamma {
                    break 'rounds;
                }
                out.tokens.push(t);
                out.q.push((!cx.warp.is_greedy()).then(|| r.p[j].clone()));
                if rekv {
                    let q = if cx.warp.is_greedy() {
                        probabilities(&r.rows[j], 1.0)[t as usize]
                    } else {
                        r.p[j][t as usize]
                    };
                    out.conf.push(q as f32);
                }
                s.push(t);
                if cx.stop_ids.contains(&t) {
                    break 'rounds;
                }
            }
        }
        cx.rekv = rekv;
        cx.recycle = recycle;
        cx.recycle_target = target;
        self.text = s;
        Ok(out)
    }

    fn commit(&mut self, seq: &[u32], _: Option<(usize, usize)>, cx: &mut Cx) -> Result<()> {
        let held = &self.text[..self.mid.upto.min(self.text.len())];
        let keep = common_prefix(held, seq).min(seq.len() - 1);
        rollback_to(&mut self.mid.cache, keep);
        self.mid.upto = keep;
        self.text = seq.to_vec();
        self.inner.commit(seq, None, cx)
    }

    fn kv(&self, pos: i64) -> Result<DraftKv> {
        DraftKv::own(&self.mid.cache, self.mid.model, pos)
    }

    fn cache_mut(&mut self) -> Option<&mut KvCache> {
        Some(&mut self.mid.cache)
    }
}
