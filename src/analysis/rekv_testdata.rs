//! Synthetic `rejections` tables with hand-checkable values, in the exact
//! schema the speculative-decoding stage writes.

use polars::prelude::*;

/// One (rejection, layer, head) row; the other columns are derived.
#[derive(Clone, Debug)]
pub struct Row {
    pub mode: &'static str,
    pub sample: &'static str,
    pub round: i64,
    pub window_pos: i64,
    pub conf: f64,
    pub rank: i64,
    pub layer: i64,
    pub head: i64,
    pub cos_k: f64,
    pub cos_v: f64,
}

/// The table of `rows`; l2_k = 2 (1 - cos_k), l2_v = 2 (1 - cos_v), so
/// distance means follow from cosine means.
pub fn frame(rows: &[Row]) -> DataFrame {
    let i = |f: fn(&Row) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
    let x = |f: fn(&Row) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
    df!(
        "sample" => rows.iter().map(|r| r.sample).collect::<Vec<_>>(),
        "round" => i(|r| r.round),
        "window_pos" => i(|r| r.window_pos),
        "abs_pos" => i(|r| 100 + 8 * r.round + r.window_pos),
        "draft_token" => i(|r| 1000 + r.round),
        "target_token" => i(|r| 2000 + r.round),
        "draft_conf" => x(|r| r.conf),
        "target_rank" => i(|r| r.rank),
        "layer_draft" => i(|r| r.layer),
        "layer_target" => i(|r| r.layer),
        "head" => i(|r| r.head),
        "cos_k" => x(|r| r.cos_k),
        "cos_v" => x(|r| r.cos_v),
        "l2_k" => x(|r| 2.0 * (1.0 - r.cos_k)),
        "l2_v" => x(|r| 2.0 * (1.0 - r.cos_v)),
        "mode" => rows.iter().map(|r| r.mode).collect::<Vec<_>>(),
    )
    .unwrap()
}

/// The three rejections of [`two_modes`]: (sample, round, window_pos, conf, rank).
pub const REJECTIONS: [(&str, i64, i64, f64, i64); 3] = [
    ("s0", 0, 2, 0.95, 1),
    ("s0", 1, 0, 0.3, 4),
    ("s1", 0, 2, 0.2, 12),
];

/// Both modes over the same three rejections, two layers × two heads each
/// (12 rows per mode). same_model: every cosine 0.9 (GO). cross_model:
/// cos_k by (layer, head) = (0,0) 0.1, (0,1) 0.3, (1,0) 0.3, (1,1) 0.5, so
/// layer means 0.2 and 0.4; cos_v 0.3 everywhere; mean cos 0.3 (NO-GO).
pub fn two_modes() -> DataFrame {
    let mut rows = Vec::new();
    for &(sample, round, window_pos, conf, rank) in &REJECTIONS {
        for layer in 0..2 {
            for head in 0..2 {
                let base = Row {
                    mode: "same_model",
                    sample,
                    round,
                    window_pos,
                    conf,
                    rank,
                    layer,
                    head,
                    cos_k: 0.9,
                    cos_v: 0.9,
                };
                rows.push(base.clone());
                rows.push(Row {
                    mode: "cross_model",
                    cos_k: 0.1 + 0.2 * (layer + head) as f64,
                    cos_v: 0.3,
                    ..base
                });
            }
        }
    }
    frame(&rows)
}

/// One row per mode with the given (mode, cos_k, cos_v).
pub fn single_rows(cells: &[(&'static str, f64, f64)]) -> DataFrame {
    let rows: Vec<Row> = cells
        .iter()
        .map(|&(mode, cos_k, cos_v)| Row {
            mode,
            sample: "s",
            round: 0,
            window_pos: 0,
            conf: 0.5,
            rank: 1,
            layer: 0,
            head: 0,
            cos_k,
            cos_v,
        })
        .collect();
    frame(&rows)
}
