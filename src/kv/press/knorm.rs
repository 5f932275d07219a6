//! knorm (kvpress `KnormPress`): keys with a small L2 norm draw more
//! attention, so the score is `-‖k‖` (accumulated in f64).

use super::observed::LayerCtx;
use crate::error::Result;

pub fn norm(x: &[f32]) -> f32 {
    x.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt() as f32
}

pub fn score(ctx: &LayerCtx) -> Result<Vec<Vec<f32>>> {
    Ok(ctx
        .keys()?
        .iter()
        .map(|h| h.iter().map(|k| -norm(k)).collect())
        .collect())
}
