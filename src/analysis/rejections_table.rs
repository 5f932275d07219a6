//! The `rejections` event table from ReKV events: one row per rejected draft
//! token × compared (layer, head). An item writes its rows without `sample`;
//! the generate stage adds `sample`, `method` and `gamma` when it assembles.

use crate::decode::spec::RekvEvent;
use crate::error::Result;
use polars::prelude::*;

/// The event columns (all but the ones the stage adds).
pub fn rejections_frame(events: &[RekvEvent]) -> Result<DataFrame> {
    let col_i = |name: &str, f: &dyn Fn(&RekvEvent) -> i64| {
        Column::new(name.into(), events.iter().map(f).collect::<Vec<i64>>())
    };
    let col_f = |name: &str, f: &dyn Fn(&RekvEvent) -> f64| {
        Column::new(name.into(), events.iter().map(f).collect::<Vec<f64>>())
    };
    let df = DataFrame::new_infer_height(vec![
        col_i("round", &|e| e.round as i64),
        col_i("window_pos", &|e| e.window_pos as i64),
        col_i("abs_pos", &|e| e.abs_pos as i64),
        col_i("draft_token", &|e| e.draft_token as i64),
        col_i("target_token", &|e| e.target_token as i64),
        col_f("draft_conf", &|e| e.draft_conf as f64),
        // 0 = the target's argmax (the library counts from 1).
        col_i("target_rank", &|e| e.target_rank as i64 - 1),
        col_i("layer_draft", &|e| e.layer_draft as i64),
        col_i("layer_target", &|e| e.layer_target as i64),
        col_i("head", &|e| e.head as i64),
        col_f("cos_k", &|e| e.cos_k as f64),
        col_f("cos_v", &|e| e.cos_v as f64),
        col_f("l2_k", &|e| e.l2_k as f64),
        col_f("l2_v", &|e| e.l2_v as f64),
        Column::new(
            "mode".into(),
            events
                .iter()
                .map(|e| e.mode.to_string())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "head_dim_mismatch".into(),
            events
                .iter()
                .map(|e| e.head_dim_mismatch)
                .collect::<Vec<_>>(),
        ),
    ])?;
    Ok(df)
}
