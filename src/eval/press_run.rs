//! Presses on kvlab's engine: prefill a context while observing what the
//! press needs (`Press::needs`), then compress the cache with
//! `kv::press::apply`. What a `press_eval` stage or `kvlab perplexity
//! --press` calls.

use candle_core::{DType, Tensor};

use crate::error::{input_err, Result};
use crate::kv::press::{self, Budget, CompressStats, Needs, Observed, Press, Window};
use crate::kv::KvCache;
use crate::model::{ForwardOpts, Logits, Model, Observe, Pool};

/// A prefilled cache and what the press observed of it.
pub struct Prefilled {
    pub cache: KvCache,
    pub observed: Observed,
    /// f32 `[1, vocab]`: the last context token's logits.
    pub last_logits: Tensor,
}

/// Inputs some presses need from outside the engine.
#[derive(Debug, Clone, Default)]
pub struct PressInputs {
    /// Per context token: special or punctuation (anchor rules A and C).
    pub anchors: Option<Vec<bool>>,
    /// kvzip: the ids asking to repeat the context, e.g. the tokens of
    /// "\n\nRepeat the previous context exactly." then "\n" (kvpress's
    /// prompt for a model without a chat template); the context follows.
    pub repeat_prompt: Option<Vec<u32>>,
}

/// kvzip's reconstruction pass on a copy of `cache` (`ids` prefilled at
/// 0..n): `repeat_prompt ++ ids` is appended, and each prefill entry gets the
/// largest attention any of those queries in its KV group paid to it.
pub fn reconstruction(
    model: &Model,
    cache: &KvCache,
    ids: &[u32],
    repeat_prompt: &[u32],
) -> Result<Vec<Vec<Vec<f32>>>> {
    let n = ids.len();
    let q: Vec<u32> = repeat_prompt.iter().chain(ids).copied().collect();
    let start = cache.next_position();
    let pos: Vec<i64> = (start..start + q.len() as i64).collect();
    let opts = ForwardOpts {
        logits: Logits::None,
        observe: Some(Observe {
            queries: 0..q.len(),
            pool: Pool::Max,
        }),
        ..Default::default()
    };
    let out = model.forward(&q, &pos, &mut cache.clone(), &opts)?;
    let rep = model.config().n_heads / model.config().n_kv_heads;
    out.attention
        .iter()
        .map(|a| {
            let a: Vec<Vec<f32>> = a.to_dtype(DType::F32)?.to_vec2()?;
            Ok(a.chunks(rep)
                .map(|g| {
                    (0..n)
                        .map(|j| g.iter().map(|h| h[j]).fold(f32::NEG_INFINITY, f32::max))
                        .collect()
                })
                .collect())
        })
        .collect()
}

/// Prefills `ids` at positions `0..n` into a fresh cache, observing `needs`.
pub fn prefill(
    model: &Model,
    ids: &[u32],
    needs: &Needs,
    inputs: &PressInputs,
) -> Result<Prefilled> {
    let t = ids.len();
    let observe = needs.attention.map(|w| {
        let (queries, pool) = match w {
            Window::LastMean(n) => (t - n.min(t)..t, Pool::Mean),
            Window::LastSum(n) => (t - n.min(t)..t, Pool::Sum),
            Window::AllSum => (0..t, Pool::Sum),
        };
        Observe { queries, pool }
    });
    let opts = ForwardOpts {
        logits: Logits::Last,
        observe,
        ..Default::default()
    };
    let pos: Vec<i64> = (0..t as i64).collect();
    let mut cache = model.new_cache();
    let (out, queries) = if needs.queries {
        model.forward_with_queries(ids, &pos, &mut cache, &opts)?
    } else {
        (model.forward(ids, &pos, &mut cache, &opts)?, Vec::new())
    };
    let attention = out
        .attention
        .iter()
        .map(|a| Ok(a.to_dtype(DType::F32)?.to_vec2::<f32>()?))
        .collect::<Result<Vec<_>>>()?;
    let out_proj = if needs.out_proj {
        out_proj_weights(model)?
    } else {
        Vec::new()
    };
    let recon = if needs.reconstruction {
        let prompt = inputs.repeat_prompt.as_deref().ok_or_else(|| {
            input_err(
                "press",
                "repeat_prompt",
                "kvzip needs the ids of a repeat prompt",
            )
        })?;
        reconstruction(model, &cache, ids, prompt)?
    } else {
        Vec::new()
    };
    Ok(Prefilled {
        cache,
        observed: Observed {
            n_heads: model.config().n_heads,
            attention,
            queries,
            out_proj,
            anchors: inputs.anchors.clone(),
            reconstruction: recon,
        },
        last_logits: out.logits.expect("last logits"),
    })
}

/// `W_o^T` `[n_heads * head_dim, hidden]` per layer, read through the
/// projection itself (identity rows minus the bias), so quantized weights
/// work too.
fn out_proj_weights(model: &Model) -> Result<Vec<Tensor>> {
    let cfg = model.config();
    let n = cfg.n_heads * cfg.head_dim;
    let eye = Tensor::eye(n, model.dtype(), model.device())?;
    let zero = Tensor::zeros((1, n), model.dtype(), model.device())?;
    (0..cfg.n_layers)
        .map(|l| {
            let w = model
                .out_proj(l, &eye)?
                .broadcast_sub(&model.out_proj(l, &zero)?)?;
            Ok(w.to_dtype(DType::F32)?)
        })
        .collect()
}

/// Validates `press` and `budget` for a context of `n_ctx` tokens (input
/// errors name `file` and the field), then compresses `cache`.
pub fn compress(
    file: &str,
    cache: &mut KvCache,
    press: &Press,
    budget: &Budget,
    observed: &Observed,
    n_ctx: usize,
) -> Result<CompressStats> {
    check(file, press, budget, n_ctx, cache.n_layers())?;
    press::apply(cache, press, budget, observed)
}

pub fn check(
    file: &str,
    press: &Press,
    budget: &Budget,
    n_ctx: usize,
    n_layers: usize,
) -> Result<()> {
    budget.validate(file, n_ctx, n_layers)?;
    press.validate(file, n_ctx)
}

/// Prefill + compress in one call.
pub fn prefill_compressed(
    file: &str,
    model: &Model,
    ids: &[u32],
    press: &Press,
    budget: &Budget,
    inputs: &PressInputs,
) -> Result<(Prefilled, CompressStats)> {
    check(file, press, budget, ids.len(), model.config().n_layers)?;
    let n_layers = model.config().n_layers;
    let needs = if press::evicts(press, budget, ids.len(), n_layers) {
        press.needs()
    } else {
        // Observing would take the engine's unfused attention path and change
        // the cache's last bits; nothing is evicted, so observe nothing.
        Needs::default()
    };
    let mut p = prefill(model, ids, &needs, inputs)?;
    let stats = press::apply(&mut p.cache, press, budget, &p.observed)?;
    Ok((p, stats))
}
