//! Speculative decoding on kvlab's own engine.
//!
//! Each round: the draft proposes up to gamma tokens (with the distributions
//! q they were drawn from); the target runs the pending token and all of them
//! in ONE forward (`Logits::All`, gamma + 1 positions); verification accepts
//! a prefix; the rejected positions are rolled back with `KvCache::truncate`
//! (by position; the prefix is never recomputed); the round emits the
//! accepted tokens and one more (the correction, or the bonus when all were
//! accepted).
//!
//! Counters, per round: `drafted = accepted + rejected` (rejected = tokens
//! discarded from the first mismatch on) and `emitted = accepted + 1`, except
//! in the last round, where a stop token among the accepted ones ends the
//! output right after it (`emitted <= accepted + 1`). `max_new_tokens` never
//! cuts a round: gamma is capped to the remaining budget minus one. The
//! first token comes from the prefill (TTFT) and belongs to no round.

mod build_proposer;
pub mod cascade;
mod context;
mod counters;
pub mod draft;
pub mod gamma;
pub mod press_hook;
mod proposer;
pub mod recycle;
pub mod rekv;
mod rollback;
mod round;
mod verdict;
pub mod verify_greedy;
pub mod verify_stochastic;

#[cfg(test)]
mod chi2;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_recycle;
#[cfg(test)]
mod tests_rekv;
#[cfg(test)]
mod tests_stochastic;

pub use counters::Counters;
pub use draft::{check_same_vocab, vocab_digest, Draft};
pub use gamma::GammaSchedule;
pub use press_hook::{NoPress, PressHook};
pub use recycle::{Recycle, RECYCLE};
pub use rekv::RekvEvent;
pub use verdict::Verdict;

use crate::decode::sampling::{argmax, sample_from};
use crate::decode::warp::Warp;
use crate::error::{input_err, Result};
use crate::kv::KvCache;
use crate::model::{ForwardOpts, Logits, Model};
use context::Cx;
use rand::SeedableRng;
use round::{round, Verifier};
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct SpecOpts {
    pub max_new_tokens: usize,
    /// Applied identically to the target's and the draft's logits.
    pub warp: Warp,
    pub seed: u64,
    /// Generation stops after emitting one of these (kept in the output).
    pub stop_ids: Vec<u32>,
    pub gamma: GammaSchedule,
    /// ReKV instrumentation (rekv.rs); off costs nothing.
    pub rekv: bool,
    pub recycle: Recycle,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoundStats {
    pub round: usize,
    /// The schedule's gamma (the draft may propose fewer: budget, stop
    /// token, no lookup match).
    pub gamma: usize,
    pub drafted: usize,
    pub accepted: usize,
    /// Drafted tokens discarded: `drafted - accepted`.
    pub rejected: usize,
    /// Window position of the first rejected token.
    pub rejected_at: Option<usize>,
    pub emitted: usize,
    pub draft_ms: f64,
    pub verify_ms: f64,
    pub round_ms: f64,
}

#[derive(Debug, Clone)]
pub struct SpecGeneration {
    pub new_ids: Vec<u32>,
    /// Prefill plus choosing the first token.
    pub ttft_ms: f64,
    /// Mean time per token after the first.
    pub tpot_ms: f64,
    pub total_ms: f64,
    /// "stop_token" or "max_tokens".
    pub stop_reason: String,
    pub rounds: Vec<RoundStats>,
    pub counters: Counters,
    /// ReKV rows (empty unless `SpecOpts::rekv`).
    pub rekv: Vec<RekvEvent>,
    /// Bytes of KV cache held at the end: the target's, and the draft's own
    /// (0 when it has none; a cascade's is the intermediate's).
    pub kv_bytes: usize,
    pub draft_kv_bytes: usize,
}

impl SpecGeneration {
    pub fn drafted(&self) -> usize {
        self.rounds.iter().map(|r| r.drafted).sum()
    }
    pub fn accepted(&self) -> usize {
        self.rounds.iter().map(|r| r.accepted).sum()
    }
    /// accepted / drafted (0 when nothing was drafted).
    pub fn acceptance_rate(&self) -> f64 {
        let d = self.drafted();
        if d == 0 {
            0.0
        } else {
            self.accepted() as f64 / d as f64
        }
    }
    /// Mean drafted tokens accepted per round (the bonus/correction not counted).
    pub fn mean_accepted_len(&self) -> f64 {
        if self.rounds.is_empty() {
            0.0
        } else {
            self.accepted() as f64 / self.rounds.len() as f64
        }
    }
}

fn check_opts(target: &Model, draft: &Draft, prompt: &[u32], o: &SpecOpts) -> Result<()> {
    if prompt.is_empty() {
        return Err(input_err("speculative decoding", "prompt", "is empty"));
    }
    o.gamma
        .check()
        .map_err(|m| input_err("speculative decoding", "gamma", m))?;
    if o.recycle.draft() && !matches!(draft, Draft::Model { .. }) {
        return Err(input_err(
            "speculative decoding",
            "recycle",
            "needs a draft model with its own cache (draft = model)",
        ));
    }
    if let Some(from) = o.recycle.target_from() {
        let n = target.config().n_layers;
        if from >= n {
            return Err(input_err(
                "speculative decoding",
                "recycle_from_layer",
                format!("{from} is not below the target's {n} layers"),
            ));
        }
        if o.rekv {
            return Err(input_err(
                "speculative decoding",
                "recycle",
                "target recycling replaces the K/V that rekv compares against: not with rekv",
            ));
        }
    }
    draft.check(target)
}

pub fn speculative_generate(
    target: &Model,
    draft: &Draft,
    prompt: &[u32],
    opts: &SpecOpts,
) -> Result<SpecGeneration> {
    speculative_generate_with(target, draft, prompt, opts, &mut NoPress)
}

/// `speculative_generate` with a hook called before every round (presses).
pub fn speculative_generate_with(
    target: &Model,
    draft: &Draft,
    prompt: &[u32],
    opts: &SpecOpts,
    hook: &mut dyn PressHook,
) -> Result<SpecGeneration> {
    check_opts(target, draft, prompt, opts)?;
    let t_start = Instant::now();
    let mut cx = Cx {
        warp: opts.warp,
        rng: rand::rngs::StdRng::seed_from_u64(opts.seed),
        stop_ids: &opts.stop_ids,
        rekv: opts.rekv,
        recycle: opts.recycle.draft(),
        recycle_target: opts.recycle.target_from(),
        counters: Counters::default(),
    };
    let mut out = SpecGeneration {
        new_ids: vec![],
        ttft_ms: 0.0,
        tpot_ms: 0.0,
        total_ms: 0.0,
        stop_reason: "max_tokens".into(),
        rounds: vec![],
        counters: Counters::default(),
        rekv: vec![],
        kv_bytes: 0,
        draft_kv_bytes: 0,
    };
    if opts.max_new_tokens == 0 {
        return Ok(out);
    }
    let mut proposer = draft.proposer(target);
    let mut v = Verifier {
        model: target,
        cache: target.new_cache(),
        upto: 0,
    };
    // Prefill: the first token comes from the target alone.
    let pos: Vec<i64> = (0..prompt.len() as i64).collect();
    let lg = target
        .forward(prompt, &pos, &mut v.cache, &ForwardOpts::default())?
        .logits
        .expect("Logits::Last");
    cx.counters.target_forwards += 1;
    v.upto = prompt.len();
    let first = proposer::row(&lg)?;
    let tok = if cx.warp.is_greedy() {
        argmax(&first)
    } else {
        sample_from(&cx.warp.probs(&first), &mut cx.rng)
    };
    out.ttft_ms = t_start.elapsed().as_secs_f64() * 1e3;
    let mut seq = prompt.to_vec();
    seq.push(tok);
    out.new_ids.push(tok);
    let mut stopped = opts.stop_ids.contains(&tok);
    let mut gamma = opts.gamma.start();
    let mut pending: Option<rekv::Pending> = None;
    while !stopped && out.new_ids.len() < opts.max_new_tokens {
        let r_idx = out.rounds.len();
        hook.between_rounds(r_idx, &mut v.cache, proposer.cache_mut())?;
        let t0 = Instant::now();
        let budget = opts.max_new_tokens - out.new_ids.len();
        let g = gamma.min(budget - 1);
        let r = round(&mut v, &mut *proposer, &seq, g, &mut cx, r_idx)?;
        // The pending token of this round is the previous rejection's truth.
        if let Some(p) = pending.take() {
            resolve(&p, &v.cache, seq[p.abs_pos], &mut out.rekv)?;
        }
        let mut emitted = 0;
        for t in r.new_tokens() {
            seq.push(t);
            out.new_ids.push(t);
            emitted += 1;
            if opts.stop_ids.contains(&t) {
                stopped = true;
                break;
            }
        }
        let (drafted, accepted) = (r.drafted.len(), r.verdict.accepted);
        out.rounds.push(RoundStats {
            round: r_idx,
            gamma,
            drafted,
            accepted,
            rejected: drafted - accepted,
            rejected_at: (accepted < drafted).then_some(accepted),
            emitted,
            draft_ms: r.draft_ms,
            verify_ms: r.verify_ms,
            round_ms: t0.elapsed().as_secs_f64() * 1e3,
        });
        pending = r.pending;
        gamma = opts.gamma.next(gamma, drafted, accepted);
    }
    if let Some(p) = pending.take() {
        // The last emitted token's K/V was never computed: one more target
        // forward, only with rekv on.
        let last = seq.len() - 1;
        if p.abs_pos == last && v.upto == last {
            let o = ForwardOpts {
                logits: Logits::None,
                ..Default::default()
            };
            target.forward(&seq[last..], &[last as i64], &mut v.cache, &o)?;
            resolve(&p, &v.cache, seq[last], &mut out.rekv)?;
        }
    }
    out.total_ms = t_start.elapsed().as_secs_f64() * 1e3;
    let later = out.new_ids.len().saturating_sub(1);
    if later > 0 {
        out.tpot_ms = (out.total_ms - out.ttft_ms) / later as f64;
    }
    if stopped {
        out.stop_reason = "stop_token".into();
    }
    out.kv_bytes = v.cache.nbytes();
    out.draft_kv_bytes = proposer.cache_mut().map_or(0, |c| c.nbytes());
    out.counters = cx.counters;
    Ok(out)
}

fn resolve(
    p: &rekv::Pending,
    cache: &KvCache,
    truth_tok: u32,
    ev: &mut Vec<RekvEvent>,
) -> Result<()> {
    if let Some(truth) = rekv::kv_at(cache, p.abs_pos as i64)? {
        p.resolve(&truth, truth_tok, ev);
    }
    Ok(())
}
