//! Optional eviction after fusion: a press caps the fused cache before
//! decoding, as it would after a plain prefill. Recomputed entries were
//! appended out of position order, and presses read recency from the slot
//! order, so the cache is first put back in position order. A press that
//! observes attention (snapkv) sees the question's queries: the question's
//! entries are dropped and its tokens re-run with observation (its own K/V
//! come back the same; the extra forward is counted in the press time).

use candle_core::{DType, Tensor};

use crate::error::{other, Result};
use crate::kv::press::{self, Budget, CompressStats, Needs, Observed, Press, Window};
use crate::kv::KvCache;
use crate::model::{ForwardOpts, Logits, Model, Observe, Pool};

/// Sorts every layer's entries by position (the fused cache holds one
/// position list for all heads).
pub fn sort_by_position(cache: &mut KvCache) -> Result<()> {
    for l in 0..cache.n_layers() {
        let pos = cache.positions(l);
        if pos.windows(2).all(|w| w[0] < w[1]) {
            continue;
        }
        let mut order: Vec<usize> = (0..pos.len()).collect();
        order.sort_by_key(|&i| pos[i]);
        cache.gather(l, &order)?;
    }
    Ok(())
}

/// Presses `cache` (the fused `[prefix][document][question]`) to `ratio`;
/// `tail`: the prompt's last tokens the fusion recomputed (the question, or
/// `cat`'s last token), which an observing press re-runs. Returns the stats
/// and, when the tail was re-run, its new last logits.
pub fn press_fused(
    model: &Model,
    cache: &mut KvCache,
    tail: &[u32],
    press: &Press,
    ratio: f64,
) -> Result<(CompressStats, Option<Tensor>)> {
    let question = tail;
    sort_by_position(cache)?;
    let budget = Budget::ratio(ratio);
    let n_ctx = cache.len(0);
    budget.validate("fusion_eval", n_ctx, cache.n_layers())?;
    press.validate("fusion_eval", n_ctx)?;
    let needs = if press::evicts(press, &budget, n_ctx, cache.n_layers()) {
        press.needs()
    } else {
        Needs::default()
    };
    if needs.queries || needs.out_proj || needs.reconstruction {
        return Err(other(format!(
            "fusion_eval: press {press:?} needs more than the cache and attention"
        )));
    }
    let mut obs = Observed {
        n_heads: model.config().n_heads,
        ..Observed::default()
    };
    let mut logits = None;
    if let Some(w) = needs.attention {
        let q = question.len();
        if q == 0 || q >= n_ctx {
            return Err(other("fusion_eval: an observing press needs a question"));
        }
        let pool = match w {
            Window::LastMean(_) => Pool::Mean,
            Window::LastSum(_) | Window::AllSum => Pool::Sum,
        };
        let n = match w {
            Window::LastMean(n) | Window::LastSum(n) => n.min(q),
            Window::AllSum => q,
        };
        let pos = cache.positions(0)[n_ctx - q..].to_vec();
        cache.truncate(n_ctx - q);
        let opts = ForwardOpts {
            logits: Logits::Last,
            observe: Some(Observe {
                queries: q - n..q,
                pool,
            }),
            ..Default::default()
        };
        let out = model.forward(question, &pos, cache, &opts)?;
        obs.attention = out
            .attention
            .iter()
            .map(|a| Ok(a.to_dtype(DType::F32)?.to_vec2::<f32>()?))
            .collect::<Result<Vec<_>>>()?;
        logits = out.logits;
    }
    Ok((press::apply(cache, press, &budget, &obs)?, logits))
}
