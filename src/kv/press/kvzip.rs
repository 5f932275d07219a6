//! kvzip (kvpress `KVzipPress`, one reconstruction chunk): after the
//! prefill, the model is asked to repeat the context (`repeat prompt ++
//! context`, appended to a copy of the cache); an entry's score is the
//! largest attention any reconstruction query of its KV group pays to it
//! (`Observed::reconstruction`, filled by `eval::press_run`). The `n_sink`
//! first entries score `max + 1`. kvpress by default pools the budget over
//! all layers and heads (`layerwise=False`); kvlab applies the `Budget`
//! given (per layer; `per_head: Some(0.0)` gives kvpress's `layerwise=True`
//! head pooling without safeguard). Contexts longer than kvpress's
//! `chunk_size` (2048), a chat-template prefix and KVzip+ normalisation are
//! not reproduced. Checked against kvpress `KVzipPress(layerwise=True)` on
//! the tiny fixture (tests/fixtures/press/kvzip_r50.json): same per-head
//! allotments, kept sets contain kvpress's.

use super::observed::{pad_max, LayerCtx};
use crate::error::{other, Result};

pub fn score(ctx: &LayerCtx, n_sink: usize) -> Result<Vec<Vec<f32>>> {
    let r = ctx
        .obs
        .reconstruction
        .get(ctx.layer)
        .ok_or_else(|| other("kvzip: no reconstruction attention for this layer"))?;
    let len = ctx.len();
    if r.first().map(Vec::len) != Some(len) {
        return Err(other(
            "kvzip: reconstruction attention does not cover the cache",
        ));
    }
    let sink = n_sink.min(len);
    let mut s: Vec<Vec<f32>> = r.iter().map(|h| h[sink..].to_vec()).collect();
    pad_max(&mut s, sink, false);
    Ok(s)
}
