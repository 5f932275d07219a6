//! Draft kinds and the proposers that run them during one generation.
//!
//! - `Model`: a second, smaller model with its own cache (same tokenizer).
//! - `SelfSpec`: the target's first N layers + final norm + LM head. Its
//!   layers share the target's cache: the draft writes the shallow K/V of the
//!   pending and drafted tokens, and the verifier continues from the draft's
//!   exit hidden states over layers N.. only (`Model::forward_layers`), so
//!   shallow K/V of accepted tokens is computed exactly once.
//! - `Lookup`: prompt lookup — the last n tokens are matched earlier in the
//!   prompt + text so far and the tokens that followed are proposed; no
//!   model, q is one-hot.
//! - `Cascade`: draft -> intermediate -> target (see cascade.rs).

use super::recycle::recycle_rejected;
use super::rekv::{kv_at, KvRows};
use super::Cx;
use crate::decode::sampling::{argmax, probabilities, sample_from};
use crate::error::{input_err, Result};
use crate::kv::KvCache;
use crate::model::{LayerInput, Logits, Model};
use crate::tokenizer::Tokenizer;
use candle_core::Tensor;

pub enum Draft<'m> {
    Model {
        model: &'m Model,
        /// Names the draft in errors (a path or pin).
        name: String,
    },
    SelfSpec {
        layers: usize,
    },
    Lookup {
        ngram: usize,
    },
    Cascade {
        draft: Box<Draft<'m>>,
        intermediate: &'m Model,
        name: String,
    },
}

/// A digest of a vocabulary: the size and, when a tokenizer is at hand, every
/// token's text. Two models may draft for each other only if equal.
pub fn vocab_digest(vocab_size: usize, tok: Option<&Tokenizer>) -> String {
    let mut h = blake3::Hasher::new();
    h.update(&(vocab_size as u64).to_le_bytes());
    if let Some(t) = tok {
        for id in 0..t.vocab_size() as u32 {
            let s = t.token_text(id).unwrap_or_default();
            h.update(&(s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
    }
    h.finalize().to_hex().to_string()
}

/// An input error naming `name` (the draft) when the digests differ.
pub fn check_same_vocab(target: &str, draft: &str, name: &str, flag: &str) -> Result<()> {
    if target != draft {
        return Err(input_err(
            name,
            flag,
            "its vocabulary differs from the target's (a draft must share the tokenizer)",
        ));
    }
    Ok(())
}

impl<'m> Draft<'m> {
    /// Checks the draft against `target` (vocabulary size, layer count).
    pub fn check(&self, target: &Model) -> Result<()> {
        let tv = target.config().vocab_size;
        let vocab = |m: &Model, name: &str| {
            check_same_vocab(
                &vocab_digest(tv, None),
                &vocab_digest(m.config().vocab_size, None),
                name,
                "draft",
            )
        };
        match self {
            Draft::Model { model, name } => vocab(model, name),
            Draft::SelfSpec { layers } => {
                let n = target.config().n_layers;
                if *layers == 0 || *layers >= n {
                    return Err(input_err(
                        "self-speculation",
                        "self_spec_layers",
                        format!("{layers} is not in 1..{n} (the target has {n} layers)"),
                    ));
                }
                Ok(())
            }
            Draft::Lookup { ngram } => {
                if *ngram == 0 {
                    return Err(input_err("prompt lookup", "lookup_ngram", "must be >= 1"));
                }
                Ok(())
            }
            Draft::Cascade {
                draft,
                intermediate,
                name,
            } => {
                vocab(intermediate, name)?;
                draft.check(intermediate)
            }
        }
    }

    pub(crate) fn proposer(&self, verifier: &'m Model) -> Box<dyn Proposer + 'm> {
        match self {
            Draft::Model { model, .. } => Box::new(ModelProposer::new(model)),
            Draft::SelfSpec { layers } => Box::new(SelfProposer {
                layers: *layers,
                model: verifier,
            }),
            Draft::Lookup { ngram } => Box::new(LookupProposer { ngram: *ngram }),
            Draft::Cascade {
                draft,
                intermediate,
                ..
            } => Box::new(super::cascade::CascadeProposer::new(
                draft.proposer(intermediate),
                intermediate,
            )),
        }
    }
}

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

/// Drops every entry at a position >= `pos` (entries are appended in
/// position order, so they are a suffix of each layer even after a press).
pub(crate) fn rollback_to(cache: &mut KvCache, pos: usize) {
    for l in 0..cache.n_layers() {
        let p = cache.positions(l);
        let keep = p.len() - p.iter().rev().take_while(|&&x| x >= pos as i64).count();
        cache.truncate_layer(l, keep);
    }
}

pub(crate) fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// A second model with its own cache; `fed` is the text its cache holds.
pub(crate) struct ModelProposer<'m> {
    model: &'m Model,
    cache: KvCache,
    fed: Vec<u32>,
    /// Logits after each drafted token it ran (recycling reuses them).
    step_logits: Vec<Vec<f32>>,
    /// Recycled logits: the next proposal starts from them, no forward.
    carry: Option<Vec<f32>>,
}

impl<'m> ModelProposer<'m> {
    pub fn new(model: &'m Model) -> Self {
        ModelProposer {
            model,
            cache: model.new_cache(),
            fed: vec![],
            step_logits: vec![],
            carry: None,
        }
    }

    fn feed(&mut self, ids: &[u32], logits: Logits, cx: &mut Cx) -> Result<Option<Vec<f32>>> {
        let start = self.fed.len() as i64;
        let pos: Vec<i64> = (start..start + ids.len() as i64).collect();
        let opts = crate::model::ForwardOpts {
            logits,
            ..Default::default()
        };
        let out = self.model.forward(ids, &pos, &mut self.cache, &opts)?;
        self.fed.extend_from_slice(ids);
        cx.counters.draft_forwards += 1;
        out.logits.as_ref().map(row).transpose()
    }
}

impl Proposer for ModelProposer<'_> {
    fn propose(
        &mut self,
        seq: &[u32],
        gamma: usize,
        _vcache: &mut KvCache,
        _upto: usize,
        cx: &mut Cx,
    ) -> Result<Proposal> {
        let mut out = Proposal::empty();
        self.step_logits.clear();
        if gamma == 0 {
            self.carry = None;
            return Ok(out);
        }
        let mut logits = match self.carry.take() {
            Some(l) if self.fed.len() == seq.len() => l,
            _ => {
                let missing = seq[self.fed.len()..].to_vec();
                self.feed(&missing, Logits::Last, cx)?.expect("logits")
            }
        };
        for i in 0..gamma {
            let t = choose(&logits, cx, &mut out);
            let last = i + 1 == gamma || cx.stop_ids.contains(&t);
            if last {
                // rekv reads the draft's K/V of any rejected token, the last too.
                if cx.rekv {
                    self.feed(&[t], Logits::None, cx)?;
                }
                break;
            }
            logits = self.feed(&[t], Logits::Last, cx)?.expect("logits");
            self.step_logits.push(logits.clone());
        }
        Ok(out)
    }

    fn commit(&mut self, seq: &[u32], recycle: Option<(usize, usize)>, cx: &mut Cx) -> Result<()> {
        self.carry = None;
        if let Some((k, pending)) = recycle {
            let r = recycle_rejected(
                &mut self.cache,
                &mut self.fed,
                &self.step_logits,
                seq,
                k,
                pending,
            );
            if r.is_some() {
                self.carry = r;
                cx.counters.draft_steps_saved += 1;
                return Ok(());
            }
        }
        // The pending (last) token is always run again: its logits are needed.
        let keep = common_prefix(&self.fed, seq).min(seq.len() - 1);
        rollback_to(&mut self.cache, keep);
        self.fed.truncate(keep);
        Ok(())
    }

    fn kv(&self, pos: i64) -> Result<DraftKv> {
        Ok(match kv_at(&self.cache, pos)? {
            Some(rows) => DraftKv::Own(rows, self.model.config().n_layers),
            None => DraftKv::None,
        })
    }

    fn cache_mut(&mut self) -> Option<&mut KvCache> {
        Some(&mut self.cache)
    }
}

/// The target's first `layers` layers, writing into the target's cache.
pub(crate) struct SelfProposer<'m> {
    layers: usize,
    model: &'m Model,
}

impl Proposer for SelfProposer<'_> {
    fn propose(
        &mut self,
        seq: &[u32],
        gamma: usize,
        vcache: &mut KvCache,
        upto: usize,
        cx: &mut Cx,
    ) -> Result<Proposal> {
        let mut out = Proposal::empty();
        if gamma == 0 {
            return Ok(out);
        }
        let n = self.layers;
        let mut hidden = Vec::with_capacity(gamma + 1);
        let pos: Vec<i64> = (upto as i64..seq.len() as i64).collect();
        let (h, lg) = self.model.forward_layers(
            LayerInput::Ids(&seq[upto..]),
            &pos,
            vcache,
            0..n,
            Logits::Last,
        )?;
        cx.counters.draft_forwards += 1;
        hidden.push(h);
        let mut logits = row(&lg.expect("logits"))?;
        for (i, p) in (seq.len() as i64..).take(gamma).enumerate() {
            let t = choose(&logits, cx, &mut out);
            // The last drafted token still runs the shallow layers: the
            // verifier continues from its hidden state and keeps its K/V.
            let last = i + 1 == gamma || cx.stop_ids.contains(&t);
            let want = if last { Logits::None } else { Logits::Last };
            let (h, lg) =
                self.model
                    .forward_layers(LayerInput::Ids(&[t]), &[p], vcache, 0..n, want)?;
            cx.counters.draft_forwards += 1;
            hidden.push(h);
            if last {
                break;
            }
            logits = row(&lg.expect("logits"))?;
        }
        out.hidden = Some((Tensor::cat(&hidden, 0)?, n));
        Ok(out)
    }

    fn commit(&mut self, _: &[u32], _: Option<(usize, usize)>, _: &mut Cx) -> Result<()> {
        Ok(()) // the verifier's rollback covers the shared layers
    }

    fn kv(&self, _: i64) -> Result<DraftKv> {
        Ok(DraftKv::Shared(self.layers))
    }

    fn cache_mut(&mut self) -> Option<&mut KvCache> {
        None // it is the target's
    }
}

/// Prompt lookup (n-gram matching in the text so far).
pub(crate) struct LookupProposer {
    ngram: usize,
}

/// The tokens that followed the most recent earlier occurrence of the
/// longest suffix of `seq` (n = `ngram` down to 1) that occurs earlier.
pub fn lookup(seq: &[u32], ngram: usize, gamma: usize) -> Vec<u32> {
    let len = seq.len();
    for n in (1..=ngram.min(len.saturating_sub(1))).rev() {
        let tail = &seq[len - n..];
        // Start s of an earlier match: s + n < len, so a continuation exists.
        for s in (0..len - n).rev() {
            if &seq[s..s + n] == tail {
                let from = s + n;
                return seq[from..(from + gamma).min(len)].to_vec();
            }
        }
    }
    vec![]
}

impl Proposer for LookupProposer {
    fn propose(
        &mut self,
        seq: &[u32],
        gamma: usize,
        _: &mut KvCache,
        _: usize,
        cx: &mut Cx,
    ) -> Result<Proposal> {
        let mut out = Proposal::empty();
        for t in lookup(seq, self.ngram, gamma) {
            out.tokens.push(t);
            out.q.push(None);
            if cx.rekv {
                out.conf.push(1.0);
            }
            if cx.stop_ids.contains(&t) {
                break;
            }
        }
        Ok(out)
    }

    fn commit(&mut self, _: &[u32], _: Option<(usize, usize)>, _: &mut Cx) -> Result<()> {
        Ok(())
    }

    fn kv(&self, _: i64) -> Result<DraftKv> {
        Ok(DraftKv::None)
    }

    fn cache_mut(&mut self) -> Option<&mut KvCache> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_proposes_what_followed_the_latest_match() {
        let seq = [1, 2, 3, 9, 1, 2, 3, 7, 5, 1, 2, 3];
        assert_eq!(lookup(&seq, 3, 2), vec![7, 5]);
        assert_eq!(lookup(&seq, 3, 9), vec![7, 5, 1, 2, 3]);
        // No 2-gram [4, 6] earlier; falls back to the 1-gram [6].
        assert_eq!(lookup(&[6, 8, 4, 6], 2, 3), vec![8, 4, 6]);
        assert!(lookup(&[1, 2, 3], 2, 4).is_empty());
        assert!(lookup(&[5], 2, 4).is_empty());
    }
}
