//! Tables and figures of an attention analysis (`attention_stats`):
//! `attention.parquet` (layer, head, token_type, position_bucket, mass — the
//! mean share of a query's attention —, n_keys — mean keys of that kind
//! per query —, per_token — mass / n_keys), `concentration.parquet` (layer,
//! head, concentration), `position.parquet` (position, mass); figures
//! `concentration_heatmap.svg` (layer × head), `token_types.svg` (per-token
//! attention by type), `position_profile.svg` (mass by key position).

use super::attention_stats::{AttentionStats, BUCKETS};
use super::token_type::TYPES;
use crate::error::Result;
use crate::plot::bars::{bar_chart, BarOptions, Group};
use crate::plot::heatmap::{heatmap, Grid};
use crate::plot::line::{line_chart, Line};
use crate::plot::Figure;
use crate::table::write_parquet;
use polars::prelude::*;
use std::path::Path;

pub fn write(s: &AttentionStats, out: &Path) -> Result<()> {
    let nq = s.n_queries.max(1.0);
    let (mut layer, mut head, mut ty, mut bucket) = (vec![], vec![], vec![], vec![]);
    let (mut mass, mut nkeys, mut per_tok) = (vec![], vec![], vec![]);
    // Per type over all layers, heads and buckets: per-token attention.
    let mut type_mass = vec![0.0; TYPES.len()];
    let mut type_keys = vec![0.0; TYPES.len()];
    for l in 0..s.n_layers {
        for h in 0..s.n_heads {
            for (t, tname) in TYPES.iter().enumerate() {
                for (b, bname) in BUCKETS.iter().enumerate() {
                    let c = t * BUCKETS.len() + b;
                    let (m, k) = (s.mass[l][h][c] / nq, s.keys[c] / nq);
                    type_mass[t] += m;
                    if l == 0 && h == 0 {
                        type_keys[t] += k;
                    }
                    layer.push(l as i64);
                    head.push(h as i64);
                    ty.push(tname.to_string());
                    bucket.push(bname.to_string());
                    mass.push(m);
                    nkeys.push(k);
                    per_tok.push(if k > 0.0 { m / k } else { f64::NAN });
                }
            }
        }
    }
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("layer".into(), layer),
        Column::new("head".into(), head),
        Column::new("token_type".into(), ty),
        Column::new("position_bucket".into(), bucket),
        Column::new("mass".into(), mass),
        Column::new("n_keys".into(), nkeys),
        Column::new("per_token".into(), per_tok),
    ])?;
    write_parquet(&mut df, &out.join("attention.parquet"))?;

    let mut conc = Vec::new();
    let (mut cl, mut ch) = (vec![], vec![]);
    for l in 0..s.n_layers {
        for h in 0..s.n_heads {
            cl.push(l as i64);
            ch.push(h as i64);
            conc.push(s.concentration[l][h] / nq);
        }
    }
    let grid = Grid::new(s.n_layers, s.n_heads, conc.clone())?;
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("layer".into(), cl),
        Column::new("head".into(), ch),
        Column::new("concentration".into(), conc),
    ])?;
    write_parquet(&mut df, &out.join("concentration.parquet"))?;
    heatmap(
        &Figure::new("Keys holding 80% of attention (fraction)", "head", "layer"),
        &grid,
        "fraction of keys",
        &out.join("concentration_heatmap.svg"),
    )?;

    let n_heads_layers = (s.n_layers * s.n_heads) as f64;
    let per_token: Vec<f64> = (0..TYPES.len())
        .map(|t| {
            if type_keys[t] > 0.0 {
                type_mass[t] / n_heads_layers / type_keys[t]
            } else {
                0.0
            }
        })
        .collect();
    bar_chart(
        &Figure::new(
            "Attention received per token, by token type",
            "token type",
            "mean attention per key (share of a query's)",
        ),
        &TYPES.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        &[Group::new("all layers and heads", per_token)],
        &BarOptions::default(),
        &out.join("token_types.svg"),
    )?;

    let pos: Vec<f64> = s.by_position.iter().map(|m| m / nq).collect();
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("position".into(), (0..pos.len() as i64).collect::<Vec<_>>()),
        Column::new("mass".into(), pos.clone()),
    ])?;
    write_parquet(&mut df, &out.join("position.parquet"))?;
    line_chart(
        &Figure::new(
            "Attention mass by key position",
            "key position",
            "mean attention (share of a query's)",
        ),
        &[Line::new(
            "mean over layers and heads",
            pos.iter()
                .enumerate()
                .map(|(i, &m)| (i as f64, m))
                .collect(),
        )],
        &out.join("position_profile.svg"),
    )
}
