//! The generate stage's files: what one item writes, and the stage's tables
//! assembled from its items (outputs, steps, rejections).

use crate::analysis::rejections_table::rejections_frame;
use crate::decode::cache_press::DecodePress;
use crate::decode::method::{Decoded, Round};
use crate::error::{other, IoContext, Result};
use crate::store::Artifact;
use crate::table::{read_parquet, write_parquet};
use crate::tokenizer::Tokenizer;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A planned generation's row identity (the item does not know it).
pub struct Row {
    pub sample: String,
    pub prompt: String,
    pub prompt_tokens: usize,
    pub method: String,
    pub gamma: usize,
    pub press: Option<DecodePress>,
}

/// What an item holds: the tokens, why generation stopped, the rounds.
#[derive(Serialize, Deserialize)]
struct Generated {
    new_ids: Vec<u32>,
    stop_reason: String,
    rounds: Vec<Round>,
    draft_steps_saved: usize,
    target_recycled: usize,
    /// Bytes of KV cache held at the end (target; the draft's own).
    kv_bytes: usize,
    draft_kv_bytes: usize,
}

/// An item's measurements (manifest provenance, not hashed).
#[derive(Serialize, Deserialize)]
struct Timing {
    ttft_ms: f64,
    tpot_ms: f64,
    step_ms: Vec<f64>,
}

const REJECTIONS: &str = "rejections.parquet";

/// Writes `generation.json` (and `rejections.parquet` with ReKV rows);
/// returns the timings as measurements.
pub fn write_item(d: &Decoded, out: &Path) -> Result<serde_json::Value> {
    let g = Generated {
        new_ids: d.new_ids.clone(),
        stop_reason: d.stop_reason.clone(),
        rounds: d.rounds.clone(),
        draft_steps_saved: d.draft_steps_saved,
        target_recycled: d.target_recycled,
        kv_bytes: d.kv_bytes,
        draft_kv_bytes: d.draft_kv_bytes,
    };
    let path = out.join("generation.json");
    std::fs::write(&path, serde_json::to_vec(&g).expect("serializes"))
        .ctx(format!("write {}", path.display()))?;
    if !d.rekv.is_empty() {
        write_parquet(&mut rejections_frame(&d.rekv)?, &out.join(REJECTIONS))?;
    }
    let t = Timing {
        ttft_ms: d.ttft_ms,
        tpot_ms: d.tpot_ms,
        step_ms: d.step_ms.clone(),
    };
    Ok(serde_json::to_value(t).expect("serializes"))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).ctx(format!("read {}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| other(format!("{}: {e}", path.display())))
}

#[derive(Default)]
struct Outputs {
    sample: Vec<String>,
    method: Vec<String>,
    prompt: Vec<String>,
    prompt_tokens: Vec<i64>,
    text: Vec<String>,
    new_ids: Vec<Series>,
    n_tokens: Vec<i64>,
    ttft_ms: Vec<f64>,
    tpot_ms: Vec<f64>,
    stop: Vec<String>,
    gamma: Vec<i64>,
    tokens_per_s: Vec<f64>,
    rounds: Vec<i64>,
    drafted: Vec<i64>,
    accepted: Vec<i64>,
    acceptance_rate: Vec<f64>,
    mean_accepted_len: Vec<f64>,
    draft_steps_saved: Vec<i64>,
    target_recycled: Vec<i64>,
    press: Vec<String>,
    press_ratio: Vec<f64>,
    press_on: Vec<String>,
    press_every: Vec<i64>,
    kv_bytes: Vec<i64>,
    draft_kv_bytes: Vec<i64>,
}

#[derive(Default)]
struct Steps {
    sample: Vec<String>,
    method: Vec<String>,
    step: Vec<i64>,
    tokens_accepted: Vec<i64>,
    gamma: Vec<i64>,
    step_ms: Vec<f64>,
    ttft_ms: Vec<f64>,
    tpot_ms: Vec<f64>,
    n_tokens: Vec<i64>,
    drafted: Vec<i64>,
    accepted: Vec<i64>,
}

/// `outputs.parquet`, `steps.parquet` and, when any item has ReKV rows,
/// `rejections.parquet`, in plan order.
pub fn assemble(
    rows: &[Row],
    items: &[Artifact],
    tok: &Tokenizer,
    dataset: &str,
    out_dir: &Path,
) -> Result<()> {
    let mut o = Outputs::default();
    let mut s = Steps::default();
    let mut rejections: Vec<DataFrame> = Vec::new();
    for (row, item) in rows.iter().zip(items) {
        let g: Generated = read_json(&item.path("generation.json"))?;
        let t: Timing = serde_json::from_value(item.manifest.provenance.measurements.clone())
            .map_err(|e| other(format!("item {}: measurements: {e}", item.key())))?;
        let n = g.new_ids.len() as i64;
        // Step 0 is the prefill (it chooses the first token); then one step
        // per token, or per speculative round.
        for (i, ms) in t.step_ms.iter().enumerate() {
            let r = i.checked_sub(1).and_then(|k| g.rounds.get(k));
            s.sample.push(row.sample.clone());
            s.method.push(row.method.clone());
            s.step.push(i as i64);
            s.tokens_accepted
                .push(r.map(|r| r.emitted as i64).unwrap_or(1));
            s.gamma.push(r.map(|r| r.gamma as i64).unwrap_or(0));
            s.drafted.push(r.map(|r| r.drafted as i64).unwrap_or(0));
            s.accepted.push(r.map(|r| r.accepted as i64).unwrap_or(0));
            s.step_ms.push(*ms);
            s.ttft_ms.push(t.ttft_ms);
            s.tpot_ms.push(t.tpot_ms);
            s.n_tokens.push(n);
        }
        let drafted: usize = g.rounds.iter().map(|r| r.drafted).sum();
        let accepted: usize = g.rounds.iter().map(|r| r.accepted).sum();
        let total_ms: f64 = t.step_ms.iter().sum();
        o.sample.push(row.sample.clone());
        o.method.push(row.method.clone());
        o.prompt.push(row.prompt.clone());
        o.prompt_tokens.push(row.prompt_tokens as i64);
        o.text.push(tok.decode(&g.new_ids)?);
        o.new_ids.push(Series::new("".into(), g.new_ids.clone()));
        o.n_tokens.push(n);
        o.ttft_ms.push(t.ttft_ms);
        o.tpot_ms.push(t.tpot_ms);
        o.stop.push(g.stop_reason.clone());
        o.gamma.push(row.gamma as i64);
        o.tokens_per_s.push(if total_ms > 0.0 {
            n as f64 * 1e3 / total_ms
        } else {
            0.0
        });
        o.rounds.push(g.rounds.len() as i64);
        o.drafted.push(drafted as i64);
        o.accepted.push(accepted as i64);
        o.acceptance_rate.push(if drafted > 0 {
            accepted as f64 / drafted as f64
        } else {
            0.0
        });
        o.mean_accepted_len.push(if g.rounds.is_empty() {
            0.0
        } else {
            accepted as f64 / g.rounds.len() as f64
        });
        o.draft_steps_saved.push(g.draft_steps_saved as i64);
        o.target_recycled.push(g.target_recycled as i64);
        let p = row.press.as_ref();
        o.press
            .push(p.map_or("no_press".into(), |p| p.name.clone()));
        o.press_ratio.push(p.map_or(0.0, |p| p.ratio));
        o.press_on.push(p.map_or("".into(), |p| p.on.clone()));
        o.press_every.push(p.map_or(0, |p| p.every as i64));
        o.kv_bytes.push(g.kv_bytes as i64);
        o.draft_kv_bytes.push(g.draft_kv_bytes as i64);
        let rej = item.path(REJECTIONS);
        if rej.exists() {
            let mut df = read_parquet(&rej)?;
            let h = df.height();
            df.insert_column(0, Column::new("sample".into(), vec![row.sample.clone(); h]))?;
            df.with_column(Column::new("method".into(), vec![row.method.clone(); h]))?;
            df.with_column(Column::new("gamma".into(), vec![row.gamma as i64; h]))?;
            rejections.push(df);
        }
    }
    let n = o.sample.len();
    let mut outputs = DataFrame::new_infer_height(vec![
        Column::new("sample".into(), o.sample),
        Column::new("dataset".into(), vec![dataset.to_string(); n]),
        Column::new("method".into(), o.method),
        Column::new("prompt".into(), o.prompt),
        Column::new("prompt_tokens".into(), o.prompt_tokens),
        Column::new("text".into(), o.text),
        Column::new("new_ids".into(), o.new_ids),
        Column::new("n_tokens".into(), o.n_tokens),
        Column::new("ttft_ms".into(), o.ttft_ms),
        Column::new("tpot_ms".into(), o.tpot_ms),
        Column::new("stop_reason".into(), o.stop),
        Column::new("gamma".into(), o.gamma),
        Column::new("tokens_per_s".into(), o.tokens_per_s),
        Column::new("rounds".into(), o.rounds),
        Column::new("drafted".into(), o.drafted),
        Column::new("accepted".into(), o.accepted),
        Column::new("acceptance_rate".into(), o.acceptance_rate),
        Column::new("mean_accepted_len".into(), o.mean_accepted_len),
        Column::new("draft_steps_saved".into(), o.draft_steps_saved),
        Column::new("target_recycled".into(), o.target_recycled),
        Column::new("press".into(), o.press),
        Column::new("press_ratio".into(), o.press_ratio),
        Column::new("press_on".into(), o.press_on),
        Column::new("press_every".into(), o.press_every),
        Column::new("kv_bytes".into(), o.kv_bytes),
        Column::new("draft_kv_bytes".into(), o.draft_kv_bytes),
    ])?;
    write_parquet(&mut outputs, &out_dir.join("outputs.parquet"))?;
    let mut steps = DataFrame::new_infer_height(vec![
        Column::new("sample".into(), s.sample),
        Column::new("method".into(), s.method),
        Column::new("step".into(), s.step),
        Column::new("tokens_accepted".into(), s.tokens_accepted),
        Column::new("gamma".into(), s.gamma),
        Column::new("step_ms".into(), s.step_ms),
        Column::new("ttft_ms".into(), s.ttft_ms),
        Column::new("tpot_ms".into(), s.tpot_ms),
        Column::new("n_tokens".into(), s.n_tokens),
        Column::new("drafted".into(), s.drafted),
        Column::new("accepted".into(), s.accepted),
    ])?;
    write_parquet(&mut steps, &out_dir.join("steps.parquet"))?;
    if !rejections.is_empty() {
        let mut all = rejections.remove(0);
        for df in rejections {
            all.vstack_mut(&df)?;
        }
        all.rechunk_mut();
        write_parquet(&mut all, &out_dir.join(REJECTIONS))?;
    }
    Ok(())
}
