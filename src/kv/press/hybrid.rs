//! hybrid (seed 004, "Hybrid Conservative"): a sliding window (the
//! `n_sink` first and `recent` last entries) always kept, and the middle
//! ranked by key norm like knorm (`-‖k‖`: low-norm keys draw attention).
//! The seed samples the middle by key norm; kvlab takes the deterministic
//! top of that ranking.

use super::knorm;
use super::observed::{pad_max, LayerCtx};
use crate::error::Result;

pub fn score(ctx: &LayerCtx, n_sink: usize, recent: usize) -> Result<Vec<Vec<f32>>> {
    let len = ctx.len();
    let sink = n_sink.min(len);
    let recent = recent.min(len - sink);
    let mut s: Vec<Vec<f32>> = knorm::score(ctx)?
        .into_iter()
        .map(|h| h[sink..len - recent].to_vec())
        .collect();
    pad_max(&mut s, recent, true);
    pad_max(&mut s, sink, false);
    Ok(s)
}
