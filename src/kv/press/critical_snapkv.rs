//! critical_snapkv (kvpress `CriticalKVPress(SnapKVPress)`): SnapKV scores,
//! of which the top `int((1 - ratio) * len * first_stage_ratio)` are kept
//! outright; the rest are rescaled by the L1 norm of each value's
//! contribution through the output projection, `‖v W_o,h‖₁` averaged over
//! the KV group's query heads.

use candle_core::{DType, Tensor};

use super::observed::LayerCtx;
use super::select::top_k;
use super::snapkv;
use crate::error::{other, Result};

/// `[kv][len]`: mean over the group's query heads of `‖v_j W_o,h‖₁`.
pub fn value_out_l1(ctx: &LayerCtx) -> Result<Vec<Vec<f32>>> {
    let wo = ctx
        .obs
        .out_proj
        .get(ctx.layer)
        .ok_or_else(|| other("critical_snapkv: no output projection observed"))?;
    let v = ctx.cache.v(ctx.layer)?.to_dtype(DType::F32)?; // [kv, L, d]
    let (kvh, _, d) = v.dims3()?;
    let rep = ctx.n_rep();
    let mut out = Vec::with_capacity(kvh);
    for g in 0..kvh {
        let vg = v.get(g)?; // [L, d]
        let mut acc: Option<Tensor> = None;
        for h in g * rep..(g + 1) * rep {
            let w = wo.narrow(0, h * d, d)?; // [d, hidden]
            let n = vg.matmul(&w)?.abs()?.sum(1)?;
            acc = Some(match acc {
                Some(a) => (a + n)?,
                None => n,
            });
        }
        let mean = (acc.expect("a group has query heads") / rep as f64)?;
        out.push(mean.to_vec1::<f32>()?);
    }
    Ok(out)
}

pub fn score(
    ctx: &LayerCtx,
    window: usize,
    kernel: usize,
    epsilon: f32,
    first_stage_ratio: f64,
) -> Result<Vec<Vec<f32>>> {
    let mut s = snapkv::score(ctx, window, kernel)?;
    let len = ctx.len();
    let mut budget = ((1.0 - ctx.ratio) * len as f64 * first_stage_ratio) as usize;
    if first_stage_ratio > 0.0 {
        budget = budget.max(1);
    }
    let firsts: Vec<Vec<usize>> = s.iter().map(|h| top_k(h, budget)).collect();
    let norms = value_out_l1(ctx)?;
    for ((row, n), first) in s.iter_mut().zip(&norms).zip(&firsts) {
        for (v, &w) in row.iter_mut().zip(n) {
            *v = (*v + epsilon) * w;
        }
        for &i in first {
            row[i] = f32::MAX;
        }
    }
    Ok(s)
}
