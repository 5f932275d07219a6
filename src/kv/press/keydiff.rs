//! keydiff (kvpress `KeyDiffPress`): keys least similar (cosine) to the
//! mean normalised key are kept.

use super::knorm::norm;
use super::observed::LayerCtx;
use crate::error::Result;

pub fn score(ctx: &LayerCtx) -> Result<Vec<Vec<f32>>> {
    Ok(ctx
        .keys()?
        .iter()
        .map(|h| {
            let d = h.first().map_or(0, Vec::len);
            let mut anchor = vec![0f32; d];
            for k in h {
                let n = norm(k).max(1e-12);
                for (a, &v) in anchor.iter_mut().zip(k) {
                    *a += v / n;
                }
            }
            anchor.iter_mut().for_each(|a| *a /= h.len() as f32);
            let na = norm(&anchor);
            h.iter()
                .map(|k| {
                    let dot: f32 = k.iter().zip(&anchor).map(|(a, b)| a * b).sum();
                    -dot / (norm(k) * na).max(1e-8)
                })
                .collect()
        })
        .collect())
}
