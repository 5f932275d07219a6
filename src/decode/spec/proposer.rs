//! The `Proposer` interface a draft runs behind during one generation, and
//! what a proposal holds.

use super::context::Cx;
use super::rekv::{kv_at, KvRows};
use crate::decode::sampling::{argmax, probabilities, sample_from};
use crate::error::Result;
use crate::kv::KvCache;
use crate::model::Model;
use candle_core::Tensor;

/// What a draft proposes for one round.
pub(crate) struct Proposal {
    pub tokens: Vec<u32>,
    /// Per token, the distribution it was drawn from (stochastic mode with a
    /// model draft); `None` = deterministic, one-hot on the token.
    pub q: Vec<Option<Vec<f64>>>,
    /// Per token, the draft's probability of it (only with rekv on).
    pub conf: Vec<f32>,
    /// Self-speculation: hidden states after the shallow layers for the
    /// verifier's whole input, and the layer they enter.
    pub hidden: Option<(Tensor, usize)>,
}

impl Proposal {
    pub fn empty() -> Self {
        Proposal {
            tokens: vec![],
            q: vec![],
            conf: vec![],
            hidden: None,
        }
    }
}

/// Where a rejected token's draft-side K/V can be read (rekv cross_model).
pub(crate) enum DraftKv {
    /// No model (prompt lookup).
    None,
    /// The draft's own cache; the draft model's layer count.
    Own(KvRows, usize),
    /// Self-speculation: the target's own first N layers.
    Shared(usize),
}

impl DraftKv {
    /// The K/V at `pos` in the own cache of a draft-side `model`.
    pub fn own(cache: &KvCache, model: &Model, pos: i64) -> Result<Self> {
        Ok(match kv_at(cache, pos)? {
            Some(rows) => DraftKv::Own(rows, model.config().n_layers),
            None => DraftKv::None,
        })
    }
}

pub(crate) trait Proposer {
    /// Up to `gamma` tokens continuing `seq` (its last token is pending: in
    /// neither cache yet). `vcache` is the verifier's cache, holding `seq[..upto]`.
    fn propose(
        &mut self,
        seq: &[u32],
        gamma: usize,
        vcache: &mut KvCache,
        upto: usize,
        cx: &mut Cx,
    ) -> Result<Proposal>;
    /// The round is over and `seq` is the text now: drop what is not a
    /// prefix of it. `recycle`: (rejected window position, pending index)
    /// when the rejected token's K/V may stand in for the emitted one.
    fn commit(&mut self, seq: &[u32], recycle: Option<(usize, usize)>, cx: &mut Cx) -> Result<()>;
    /// The draft-side K/V of the token at `pos` (before `commit`).
    fn kv(&self, pos: i64) -> Result<DraftKv>;
    /// The draft's own cache, for a press between rounds.
    fn cache_mut(&mut self) -> Option<&mut KvCache>;
}

/// Choose the draft's next token from `logits` (argmax when greedy, a draw
/// from the warped q otherwise) and record q and the confidence.
pub(crate) fn choose(logits: &[f32], cx: &mut Cx, out: &mut Proposal) -> u32 {
    if cx.warp.is_greedy() {
        let t = argmax(logits);
        if cx.rekv {
            out.conf.push(probabilities(logits, 1.0)[t as usize] as f32);
        }
        out.q.push(None);
        out.tokens.push(t);
        t
    } else {
        let q = cx.warp.probs(logits);
        let t = sample_from(&q, &mut cx.rng);
        if cx.rekv {
            out.conf.push(q[t as usize] as f32);
        }
        out.q.push(Some(q));
        out.tokens.push(t);
        t
    }
}

pub(crate) fn row(logits: &Tensor) -> Result<Vec<f32>> {
    Ok(logits.flatten_all()?.to_vec1()?)
}
