//! Stage `press_eval`: the press × ratio × task matrix. One item per cell
//! (press, ratio, perplexity window or task sample), so adding a press
//! computes one column; a ratio-0 cell is keyed as `no_press` (a press at
//! ratio 0 evicts nothing and equals it exactly), so every press shares it.
//! Outputs `scores.parquet`, `retention.parquet`, `cells.parquet`.

use crate::analysis::token_type;
use crate::dag::item::{ItemCtx, StoreFile};
use crate::dag::params::Params;
use crate::dag::stage::{StageCtx, StageKind};
use crate::error::{IoContext, Result};
use crate::eval::press_run::PressInputs;
use crate::eval::press_tables::{Cell, Planned};
use crate::kv::press::{Budget, Needs, Press};
use crate::store::hashing::ids_blake3;
use crate::table::read_parquet;
use serde::{Deserialize, Serialize};

pub const KIND: StageKind = StageKind {
    kind: "press_eval",
    version: 2,
    inputs: &["model"],
    all_upstream: false,
    optional_inputs: &["text", "tasks"],
    unhashed: &[],
    defaults: include_str!("../../stages/press_eval.toml"),
    resolve,
    run,
    compute_item: Some(compute_item),
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PressEvalParams {
    pub presses: Vec<String>,
    pub ratios: Vec<f64>,
    pub press_every: i64,
    pub query_aware: bool,
    pub tasks: Vec<String>,
    pub max_samples: i64,
    pub window: i64,
    pub max_windows: i64,
    pub max_new_tokens: i64,
    pub dtype: String,
    pub kv_dtype: String,
    pub device: String,
    pub text_name: String,
}

fn resolve(p: &mut Params) -> Result<()> {
    let x: PressEvalParams = p.parse()?;
    if x.presses.is_empty() {
        return Err(p.err("presses", "needs at least one press"));
    }
    for name in &x.presses {
        if Press::from_name("", name).is_err() {
            return Err(p.err(
                "presses",
                format!(
                    "unknown press {name:?} (known: {})",
                    crate::kv::press::NAMES.join(", ")
                ),
            ));
        }
    }
    if x.ratios.is_empty() {
        return Err(p.err("ratios", "needs at least one ratio"));
    }
    if let Some(r) = x.ratios.iter().find(|r| !(0.0..1.0).contains(*r)) {
        return Err(p.err("ratios", format!("{r} is outside [0, 1)")));
    }
    if x.press_every < 0 {
        return Err(p.err("press_every", "must be >= 0"));
    }
    // The perplexity windows compress their first half: a press's window or
    // sinks must be smaller (checked here, so a bad matrix publishes nothing).
    let half = (x.window.max(0) / 2) as usize;
    if x.ratios.iter().any(|&r| r > 0.0) {
        for name in &x.presses {
            fits(name, half, "the perplexity windows compress window / 2 =")
                .map_err(|m| p.err("presses", m))?;
            let cache_only =
                Press::from_name("", name).is_ok_and(|p| p.needs() == Needs::default());
            if x.press_every > 0 && !cache_only {
                return Err(p.err(
                    "press_every",
                    format!("{name} reads more than the cache; re-compression needs a press that reads only the cache"),
                ));
            }
        }
    }
    if x.max_samples < 0 || x.max_windows < 0 {
        return Err(p.err("max_samples", "must be >= 0"));
    }
    if x.window < 8 {
        return Err(p.err("window", "must be >= 8"));
    }
    if x.max_new_tokens < 1 {
        return Err(p.err("max_new_tokens", "must be >= 1"));
    }
    super::common::check_load(p, &x.dtype, &x.kv_dtype, &x.device)
}

/// One cell's work (see `dag::item`).
#[derive(Serialize, Deserialize)]
struct CellWork {
    gguf: StoreFile,
    press: String,
    ratio: f64,
    dtype: String,
    kv_dtype: String,
    device: String,
    /// Perplexity: the window's ids; QA: the context's.
    ids: Vec<u32>,
    /// Special or punctuation per id (anchor rules A, C).
    anchors: Vec<bool>,
    repeat_prompt: Vec<u32>,
    qa: Option<QaWork>,
    press_every: usize,
}

#[derive(Serialize, Deserialize)]
struct QaWork {
    question: Vec<u32>,
    answers: Vec<String>,
    query_aware: bool,
    max_new: usize,
    stop_ids: Vec<u32>,
}

struct Sample {
    id: String,
    task: String,
    segments: Vec<String>,
    question: String,
    answers: Vec<String>,
}

fn strings(s: Option<polars::prelude::Series>) -> Result<Vec<String>> {
    Ok(match s {
        Some(s) => s
            .str()?
            .iter()
            .map(|x| x.unwrap_or("").to_string())
            .collect(),
        None => Vec::new(),
    })
}

fn load_samples(path: &std::path::Path, x: &PressEvalParams) -> Result<Vec<Sample>> {
    let df = read_parquet(path)?;
    let id = df.column("sample_id")?.str()?.clone();
    let task = df.column("task")?.str()?.clone();
    let q = df.column("question")?.str()?.clone();
    let seg = df.column("segments")?.list()?.clone();
    let ans = df.column("answers")?.list()?.clone();
    let mut out: Vec<Sample> = Vec::new();
    for i in 0..df.height() {
        let t = task.get(i).unwrap_or("").to_string();
        if !x.tasks.is_empty() && !x.tasks.contains(&t) {
            continue;
        }
        let n = out.iter().filter(|s| s.task == t).count();
        if x.max_samples > 0 && n >= x.max_samples as usize {
            continue;
        }
        out.push(Sample {
            id: id.get(i).unwrap_or("").to_string(),
            task: t,
            segments: strings(seg.get_as_series(i))?,
            question: q.get(i).unwrap_or("").to_string(),
            answers: strings(ans.get_as_series(i))?,
        });
    }
    Ok(out)
}

fn anchors(tok: &crate::tokenizer::Tokenizer, ids: &[u32]) -> Vec<bool> {
    ids.iter()
        .map(|&i| {
            let text = tok.token_text(i).unwrap_or_default();
            token_type::is_anchor(token_type::classify(&text, tok.is_special(i)))
        })
        .collect()
}

/// Whether press `name`'s observation window and sinks fit a compressed
/// context of `n` tokens; the message names the press's own setting.
fn fits(name: &str, n: usize, what: &str) -> std::result::Result<(), String> {
    let press = Press::from_name("", name).map_err(|e| e.to_string())?;
    match press.validate("", n) {
        Err(crate::Error::Input { field, msg, .. }) => {
            let field = if field == "window" {
                "observation window"
            } else {
                &field
            };
            Err(format!("{name}'s {field}: {msg}; {what} {n} tokens"))
        }
        Err(e) => Err(e.to_string()),
        Ok(()) => Ok(()),
    }
}

fn run(ctx: &StageCtx) -> Result<()> {
    let x: PressEvalParams = ctx.params.parse()?;
    let gguf = super::common::model_file(ctx)?;
    let model = ctx.input("model")?;
    let digest = model.manifest.content_digest();
    let tok = crate::loaded::tokenizer(&gguf)?;
    let repeat: Vec<u32> = [
        tok.encode("\n\nRepeat the previous context exactly.")?,
        tok.encode("\n")?,
    ]
    .concat();
    // The reference column first; then every press × ratio (ratio 0 = no_press's item).
    let mut columns: Vec<(String, f64)> = vec![("no_press".into(), 0.0)];
    for p in &x.presses {
        for &r in &x.ratios {
            // (no_press, 0) is the reference column, already there.
            if !columns.contains(&(p.clone(), r)) {
                columns.push((p.clone(), r));
            }
        }
    }
    // Rows: perplexity windows, then task samples: (task, sample, ids, qa).
    let mut rows: Vec<(String, String, Vec<u32>, Option<QaWork>)> = Vec::new();
    if ctx.inputs.contains_key("text") {
        let f = ctx.input_file("text", ".txt")?;
        let text = std::fs::read_to_string(&f).ctx(format!("read {}", f.display()))?;
        let ids = tok.encode(&text)?;
        let w = x.window as usize;
        let starts =
            crate::eval::perplexity::window_starts(ids.len(), w, w, x.max_windows as usize);
        if starts.is_empty() {
            return Err(ctx.params.err(
                "window",
                format!("the text has {} tokens, fewer than one window", ids.len()),
            ));
        }
        for (i, s) in starts.iter().enumerate() {
            rows.push((
                format!("perplexity:{}", x.text_name),
                format!("window{i:04}"),
                ids[*s..s + w].to_vec(),
                None,
            ));
        }
    }
    if ctx.inputs.contains_key("tasks") {
        let path = ctx.input("tasks")?.path("tasks.parquet");
        for s in load_samples(&path, &x)? {
            let mut ids = Vec::new();
            for seg in &s.segments {
                ids.extend(tok.encode(seg)?);
            }
            let question = tok.encode(&format!("\n\nQuestion: {}\nAnswer:", s.question))?;
            let mut stop_ids = tok.stop_ids();
            stop_ids.extend(tok.encode("\n")?);
            let qa = QaWork {
                question,
                answers: s.answers,
                query_aware: x.query_aware,
                max_new: x.max_new_tokens as usize,
                stop_ids,
            };
            rows.push((s.task, s.id, ids, Some(qa)));
        }
    }
    if rows.is_empty() {
        return Err(ctx.params.err("inputs", "needs a text or a tasks input"));
    }
    // Task contexts are known now, before any cell runs: check them too.
    for (press, _) in columns.iter().filter(|c| c.1 > 0.0) {
        for (task, sample, ids, qa) in rows.iter().filter(|r| r.3.is_some()) {
            let q = qa.as_ref().filter(|q| q.query_aware);
            let n = ids.len() + q.map_or(0, |q| q.question.len());
            let what = format!("sample {sample} of {task} has a context of");
            fits(press, n, &what).map_err(|m| ctx.params.err("presses", m))?;
        }
    }
    let mut planned = Vec::new();
    let mut specs = Vec::new();
    for (press, ratio) in &columns {
        for (task, sample, ids, qa) in &rows {
            let key_press = if *ratio == 0.0 { "no_press" } else { press };
            let anchor_flags = anchors(&tok, ids);
            let qa = qa.as_ref().map(|q| QaWork {
                question: q.question.clone(),
                answers: q.answers.clone(),
                query_aware: q.query_aware,
                max_new: q.max_new,
                stop_ids: q.stop_ids.clone(),
            });
            let mut preimage = serde_json::json!({
                "model": digest,
                "press": key_press,
                "ratio": ratio,
                "ids": ids_blake3(ids),
                "qa": qa.as_ref().map(|q| serde_json::json!({
                    "question": ids_blake3(&q.question),
                    "answers": q.answers,
                    "query_aware": q.query_aware,
                    "max_new": q.max_new,
                    "stop": q.stop_ids,
                })),
                "press_every": if qa.is_none() { x.press_every } else { 0 },
                "dtype": x.dtype,
                "kv_dtype": x.kv_dtype,
            });
            crate::device::add_to_preimage(&mut preimage, &x.device);
            let work = CellWork {
                gguf: StoreFile::of(model, &gguf),
                press: key_press.to_string(),
                ratio: *ratio,
                dtype: x.dtype.clone(),
                kv_dtype: x.kv_dtype.clone(),
                device: x.device.clone(),
                ids: ids.clone(),
                anchors: anchor_flags,
                repeat_prompt: repeat.clone(),
                press_every: if qa.is_none() {
                    x.press_every as usize
                } else {
                    0
                },
                qa,
            };
            specs.push(ctx.item_spec(
                preimage,
                serde_json::to_value(work).expect("work serializes"),
            ));
            planned.push(Planned {
                task: task.clone(),
                sample: sample.clone(),
                press: press.clone(),
                ratio: *ratio,
            });
        }
    }
    let mut progress = ctx.progress(specs.len() as u64, "cells");
    let items = ctx.items(&specs, &mut progress)?;
    let mut cells = Vec::new();
    for item in &items {
        let path = item.path("cell.json");
        let text = std::fs::read_to_string(&path).ctx(format!("read {}", path.display()))?;
        let c: Cell = serde_json::from_str(&text)
            .map_err(|e| crate::error::other(format!("{}: {e}", path.display())))?;
        cells.push(c);
    }
    let method = if x.query_aware {
        "query_aware".to_string()
    } else {
        "after_prefill".to_string()
    };
    let ppl_method = if x.press_every > 0 {
        format!("press_every{}", x.press_every)
    } else {
        "after_prefill".to_string()
    };
    crate::eval::press_tables::write_all(ctx.out, &planned, &cells, &method, &ppl_method)?;
    crate::analysis::press_figures::retention_figures(&ctx.out.join("retention.parquet"), ctx.out)?;
    Ok(())
}

/// One cell from its spec alone.
fn compute_item(item: &ItemCtx) -> Result<serde_json::Value> {
    let w: CellWork = item.work()?;
    let path = item.file(&w.gguf)?;
    let model = crate::loaded::model(&path, &w.dtype, &w.kv_dtype, &w.device)?;
    let press = Press::from_name("press_eval", &w.press)?;
    let budget = Budget::ratio(w.ratio);
    let inputs = PressInputs {
        anchors: Some(w.anchors.clone()),
        repeat_prompt: Some(w.repeat_prompt.clone()),
    };
    let cell = match &w.qa {
        None => {
            let half = w.ids.len() / 2;
            let spec = crate::eval::compressed_perplexity::PressSpec {
                press: &press,
                budget: &budget,
                press_every: (w.press_every > 0).then_some(w.press_every),
                inputs: PressInputs {
                    anchors: Some(w.anchors[..half].to_vec()),
                    ..inputs
                },
            };
            let r = crate::eval::compressed_perplexity::compressed_perplexity(
                "press_eval",
                &model,
                &w.ids,
                w.ids.len(),
                1,
                Some(&spec),
            )?;
            Cell {
                metrics: vec![
                    ("nll_sum".into(), r.nll_per_window[0] * r.tokens as f64),
                    ("tokens".into(), r.tokens as f64),
                ],
                bytes_before: r.bytes_before[0],
                bytes_after: r.bytes_after[0],
                prediction: String::new(),
            }
        }
        Some(q) => {
            let a = crate::eval::press_qa::answer(
                "press_eval",
                &model,
                &w.ids,
                &q.question,
                &press,
                &budget,
                &inputs,
                q.query_aware,
                q.max_new,
                &q.stop_ids,
            )?;
            let tok = crate::loaded::tokenizer(&path)?;
            let text = tok.decode(&a.new_ids)?;
            let text = text.trim().to_string();
            use crate::eval::qa_metrics as m;
            Cell {
                metrics: vec![
                    ("contains".into(), m::contains(&text, &q.answers)),
                    ("f1".into(), m::f1(&text, &q.answers)),
                    ("rouge_l".into(), m::rouge_l(&text, &q.answers)),
                ],
                bytes_before: a.bytes_before,
                bytes_after: a.bytes_after,
                prediction: text,
            }
        }
    };
    let out = item.out.join("cell.json");
    let text = serde_json::to_vec(&cell).expect("cell serializes");
    std::fs::write(&out, text).ctx(format!("write {}", out.display()))?;
    Ok(serde_json::Value::Null)
}
