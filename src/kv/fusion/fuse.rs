//! One fusion: assemble the cache, select document tokens, recompute them
//! with the question in one forward, and time each part.

use std::time::Instant;

use candle_core::Tensor;

use super::budget::budget;
use super::layout::{assemble, FusionInput};
use super::{a3, alone, attnlink, blend, surprisal};
use crate::error::{other, Result};
use crate::kv::KvCache;
use crate::model::{ForwardOpts, Model};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Full prefill of prefix + document + question: the reference.
    Vanilla,
    /// Seed 003's `cat`: only the question's last token is recomputed.
    Cat,
    /// Seed 003's `full`: the whole question, no document token.
    Full,
    Blend,
    A3,
    SurprisalChunk,
    AttnLink,
}

pub const METHODS: &[&str] = &[
    "vanilla",
    "cat",
    "full",
    "blend",
    "a3",
    "surprisal_chunk",
    "attnlink",
];

impl Method {
    pub fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "vanilla" => Method::Vanilla,
            "cat" => Method::Cat,
            "full" => Method::Full,
            "blend" => Method::Blend,
            "a3" => Method::A3,
            "surprisal_chunk" => Method::SurprisalChunk,
            "attnlink" => Method::AttnLink,
            _ => return None,
        })
    }

    /// Whether the recompute budget (`rate`) changes what this method does.
    pub fn uses_rate(self) -> bool {
        !matches!(self, Method::Vanilla | Method::Cat | Method::Full)
    }
}

#[derive(Debug, Clone)]
pub struct FuseOpts {
    pub rate: f64,
    /// Layer whose K/V (blend) or attention (a3) scores the tokens.
    pub check_layer: usize,
    /// blend: add the V deviation to the K deviation.
    pub blend_use_v: bool,
    /// attnlink: document indices to recompute.
    pub attnlink: Vec<usize>,
}

#[derive(Debug)]
pub struct Fused {
    pub cache: KvCache,
    /// `[1, vocab]` after the last recomputed token; None if nothing ran.
    pub logits: Option<Tensor>,
    pub doc_len: usize,
    /// Document tokens recomputed (sorted indices into the document).
    pub recomputed: Vec<usize>,
    pub assemble_ms: f64,
    pub select_ms: f64,
    pub recompute_ms: f64,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

pub fn fuse(model: &Model, input: &FusionInput, method: Method, o: &FuseOpts) -> Result<Fused> {
    let n = input.doc_len();
    if method == Method::Vanilla {
        let t = Instant::now();
        let mut cache = model.new_cache();
        let ids = input.all_ids();
        let pos: Vec<i64> = (0..ids.len() as i64).collect();
        let logits = if ids.is_empty() {
            None
        } else {
            model
                .forward(&ids, &pos, &mut cache, &ForwardOpts::default())?
                .logits
        };
        return Ok(Fused {
            cache,
            logits,
            doc_len: n,
            recomputed: (0..n).collect(),
            assemble_ms: 0.0,
            select_ms: 0.0,
            recompute_ms: ms(t),
        });
    }
    if o.check_layer >= model.config().n_layers {
        return Err(other(format!(
            "fusion: check layer {} >= {} layers",
            o.check_layer,
            model.config().n_layers
        )));
    }
    let t = Instant::now();
    let mut cache = assemble(model, input)?;
    let assemble_ms = ms(t);
    let t = Instant::now();
    let k = budget(o.rate, n);
    let sel = match method {
        Method::Vanilla | Method::Cat | Method::Full => vec![],
        Method::Blend => blend::select(model, input, &cache, k, o.check_layer, o.blend_use_v)?,
        Method::A3 => a3::select(model, input, &mut cache, k, o.check_layer)?,
        Method::SurprisalChunk => surprisal::select(input, k),
        Method::AttnLink => attnlink::select(&o.attnlink, n)?,
    };
    let select_ms = ms(t);
    let t = Instant::now();
    let logits = if method == Method::Cat {
        cat_question(model, input, &mut cache)?
    } else {
        recompute(model, input, &mut cache, &sel)?
    };
    Ok(Fused {
        cache,
        logits,
        doc_len: n,
        recomputed: sel,
        assemble_ms,
        select_ms,
        recompute_ms: ms(t),
    })
}

/// Drops the selected document entries and re-runs their tokens with the
/// question, each at its own position: one forward, K/V written back by
/// the append (cache order no longer equals position order; masks use
/// positions).
fn recompute(
    model: &Model,
    input: &FusionInput,
    cache: &mut KvCache,
    sel: &[usize],
) -> Result<Option<Tensor>> {
    let p = input.prefix_len();
    let mut chosen = vec![false; input.doc_len()];
    for &i in sel {
        chosen[i] = true;
    }
    let keep: Vec<usize> = (0..p)
        .chain((0..input.doc_len()).filter(|&i| !chosen[i]).map(|i| p + i))
        .collect();
    if keep.is_empty() {
        *cache = model.new_cache();
    } else if keep.len() < cache.len(0) {
        cache.gather_all(&keep)?;
    }
    let doc = input.doc_ids();
    let mut ids: Vec<u32> = sel.iter().map(|&i| doc[i]).collect();
    let mut pos: Vec<i64> = sel.iter().map(|&i| input.doc_pos(i)).collect();
    ids.extend(&input.question);
    pos.extend(input.question_pos());
    if ids.is_empty() {
        return Ok(None);
    }
    Ok(model
        .forward(&ids, &pos, cache, &ForwardOpts::default())?
        .logits)
}

/// `cat`: the question but its last token joins as a chunk computed alone;
/// only the last token runs over the fused cache.
fn cat_question(model: &Model, input: &FusionInput, cache: &mut KvCache) -> Result<Option<Tensor>> {
    let q = &input.question;
    let Some((&last, head)) = q.split_last() else {
        return Ok(None);
    };
    let qpos = input.question_pos();
    if !head.is_empty() {
        let mut kv = alone::compute_alone(model, input.prefix_kv.as_ref(), head)?.kv;
        kv.rerotate(qpos[0] - kv.positions(0)[0])?;
        cache.extend(&kv)?;
    }
    Ok(model
        .forward(
            &[last],
            &qpos[qpos.len() - 1..],
            cache,
            &ForwardOpts::default(),
        )?
        .logits)
}
