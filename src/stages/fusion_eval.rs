//! Stage `fusion_eval`: greedy answers to the tasks' samples from fused
//! precomputed chunk KVs -> `scores.parquet` (task, sample, method, press,
//! ratio, metric, value; method = selector, ratio = rate), `steps.parquet`,
//! `summary.parquet` (per task, method and rate, relative to vanilla) and
//! figures (F1-vs-TTFT frontier per task, TTFT breakdown). One item per (sample, selector, rate); selectors that
//! ignore the rate have one item per sample.

use crate::analysis::fusion_figures::fusion_figures;
use crate::analysis::fusion_summary::{cells_frame, cells_markdown, fusion_cells};
use crate::dag::item::{ItemCtx, ItemSpec, StoreFile};
use crate::dag::params::Params;
use crate::dag::stage::{StageCtx, StageKind};
use crate::error::{other, IoContext, Result};
use crate::eval::qa_metrics::{exact_match, f1, rouge_l};
use crate::kv::fusion::alone::compute_alone;
use crate::kv::fusion::answer::greedy;
use crate::kv::fusion::attnlink::chunk_starts;
use crate::kv::fusion::budget::budget;
use crate::kv::fusion::fuse::METHODS;
use crate::kv::fusion::press_after::press_fused;
use crate::kv::fusion::{fuse, FuseOpts, FusionInput, Method, Segment};
use crate::kv::press::Press;
use crate::kv::KvCache;
use crate::plot::Format;
use crate::store::hashing::ids_blake3;
use crate::table::{read_parquet, write_parquet};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Instant;

pub const KIND: StageKind = StageKind {
    kind: "fusion_eval",
    version: 1,
    inputs: &["model", "tasks", "precompute"],
    all_upstream: false,
    optional_inputs: &[],
    unhashed: &[],
    defaults: include_str!("../../stages/fusion_eval.toml"),
    resolve,
    run,
    compute_item: Some(compute_item),
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvalParams {
    methods: Vec<String>,
    rates: Vec<f64>,
    max_samples: i64,
    max_new_tokens: i64,
    check_layer: i64,
    blend_use_v: bool,
    press: String,
    press_ratio: f64,
    formats: Vec<String>,
}

fn resolve(p: &mut Params) -> Result<()> {
    let x: EvalParams = p.parse()?;
    if let Some(bad) = x.methods.iter().find(|m| Method::parse(m).is_none()) {
        return Err(p.err(
            "methods",
            format!("unknown selector '{bad}' (known: {})", METHODS.join(", ")),
        ));
    }
    if x.methods.is_empty() {
        return Err(p.err("methods", "must name at least one selector"));
    }
    if x.rates.is_empty() || x.rates.iter().any(|r| !(*r > 0.0 && *r <= 1.0)) {
        return Err(p.err("rates", "every rate must be in (0, 1]"));
    }
    formats(&x.formats).map_err(|m| p.err("formats", m))?;
    if !crate::kv::press::NAMES.contains(&x.press.as_str()) {
        let known = crate::kv::press::NAMES.join(", ");
        return Err(p.err("press", format!("unknown press '{}' ({known})", x.press)));
    }
    if !(0.0..1.0).contains(&x.press_ratio) {
        return Err(p.err("press_ratio", "must be in [0, 1)"));
    }
    if x.max_new_tokens <= 0 || x.max_samples < 0 || x.check_layer < 0 {
        return Err(p.err(
            "max_new_tokens",
            "max_new_tokens > 0, max_samples >= 0, check_layer >= 0",
        ));
    }
    Ok(())
}

/// The figure formats, checked: a non-empty subset of png/svg.
fn formats(names: &[String]) -> std::result::Result<Vec<Format>, String> {
    let mut out = vec![];
    for n in names {
        let f = Format::parse(n).ok_or_else(|| format!("unknown format {n:?} (png, svg)"))?;
        if !out.contains(&f) {
            out.push(f);
        }
    }
    if out.is_empty() {
        return Err("list at least one format (png, svg)".into());
    }
    Ok(out)
}

#[derive(Clone, Serialize, Deserialize)]
struct SegWork {
    ids: Vec<u32>,
    /// The precompute item holding this chunk's `kv.bin` / `surprisal.json`.
    item: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct EvalWork {
    gguf: StoreFile,
    prefix: Vec<u32>,
    segments: Vec<SegWork>,
    question: Vec<u32>,
    method: String,
    rate: f64,
    check_layer: usize,
    blend_use_v: bool,
    max_new_tokens: usize,
    stop_ids: Vec<u32>,
    dtype: String,
    kv_dtype: String,
    /// The precompute's device: its KV and this evaluation share one.
    device: String,
    /// Eviction after fusion (`no_press`: none).
    #[serde(default = "no_press")]
    press: String,
    #[serde(default)]
    press_ratio: f64,
}

fn no_press() -> String {
    "no_press".into()
}

#[derive(Serialize, Deserialize)]
struct EvalOut {
    new_ids: Vec<u32>,
    doc_len: usize,
    recomputed: usize,
    hits: usize,
    misses: usize,
    corrupt: usize,
}

#[derive(Serialize, Deserialize)]
struct Timing {
    load_ms: f64,
    select_ms: f64,
    recompute_ms: f64,
    /// The post-fusion press (0 without one).
    #[serde(default)]
    press_ms: f64,
    first_token_ms: f64,
    ttft_ms: f64,
    tpot_ms: f64,
    step_ms: Vec<f64>,
}

struct Sample {
    id: String,
    task: String,
    answers: Vec<String>,
}

fn strs(s: Option<Series>) -> Result<Vec<String>> {
    let s = s.ok_or_else(|| other("tasks.parquet: missing list"))?;
    Ok(s.str()?
        .iter()
        .map(|x| x.unwrap_or("").to_string())
        .collect())
}

fn run(ctx: &StageCtx) -> Result<()> {
    let x: EvalParams = ctx.params.parse()?;
    let gguf = super::common::model_file(ctx)?;
    let model = ctx.input("model")?;
    let pre = ctx.input("precompute")?;
    let meta: super::precompute::PrecomputeMeta =
        serde_json::from_slice(&std::fs::read(pre.path("meta.json")).ctx("precompute meta.json")?)
            .map_err(|e| other(format!("precompute meta.json: {e}")))?;
    // No device in the meta: a CPU precompute (see `PrecomputeMeta::device`).
    let device = meta.device.clone().unwrap_or_else(|| "cpu".into());
    let idx = read_parquet(&pre.path("index.parquet"))?;
    let mut chunk_item: HashMap<String, (String, Vec<u32>)> = HashMap::new();
    let (doc, cid, items, lists) = (
        idx.column("doc_id")?.str()?.clone(),
        idx.column("chunk_id")?.i64()?.clone(),
        idx.column("item")?.str()?.clone(),
        idx.column("token_ids")?.list()?.clone(),
    );
    for i in 0..idx.height() {
        let ids: Vec<u32> = lists
            .get_as_series(i)
            .map(|s| s.u32().map(|c| c.into_no_null_iter().collect()))
            .transpose()?
            .unwrap_or_default();
        let name = format!("{}#{}", doc.get(i).unwrap_or(""), cid.get(i).unwrap_or(0));
        chunk_item.insert(name, (items.get(i).unwrap_or("").to_string(), ids));
    }
    let tasks = read_parquet(&ctx.input("tasks")?.path("tasks.parquet"))?;
    let mut n = tasks.height();
    if x.max_samples > 0 {
        n = n.min(x.max_samples as usize);
    }
    if n == 0 {
        return Err(ctx.params.err("inputs.tasks", "empty dataset: no samples"));
    }
    let tok = crate::loaded::tokenizer(&gguf)?;
    let (sid, task, question) = (
        tasks.column("sample_id")?.str()?.clone(),
        tasks.column("task")?.str()?.clone(),
        tasks.column("question")?.str()?.clone(),
    );
    let (segs, seg_ids, answers) = (
        tasks.column("segments")?.list()?.clone(),
        tasks.column("segment_ids")?.list()?.clone(),
        tasks.column("answers")?.list()?.clone(),
    );
    let digest = model.manifest.content_digest();
    let mut specs: Vec<ItemSpec> = vec![];
    let mut cells: Vec<(usize, String, f64)> = vec![];
    let mut samples = vec![];
    for i in 0..n {
        let texts = strs(segs.get_as_series(i))?;
        let names = strs(seg_ids.get_as_series(i))?;
        let mut segments = vec![];
        for (text, name) in texts.iter().zip(&names) {
            segments.push(match chunk_item.get(name) {
                Some((item, ids)) => SegWork {
                    ids: ids.clone(),
                    item: Some(item.clone()),
                },
                None => SegWork {
                    ids: tok.encode(text)?,
                    item: None,
                },
            });
        }
        let q = tok.encode(&format!(
            "\nQuestion: {}\nAnswer:",
            question.get(i).unwrap_or("")
        ))?;
        for m in &x.methods {
            let rates = if Method::parse(m).is_some_and(|m| m.uses_rate()) {
                x.rates.clone()
            } else if m == "vanilla" {
                vec![1.0]
            } else {
                vec![0.0]
            };
            for rate in rates {
                let seg_keys: Vec<String> = segments.iter().map(|s| ids_blake3(&s.ids)).collect();
                let mut preimage = serde_json::json!({
                    "model": digest, "dtype": meta.dtype, "kv_dtype": meta.kv_dtype,
                    "prefix": ids_blake3(&meta.prefix), "segments": seg_keys,
                    "kv_items": segments.iter().map(|s| s.item.clone()).collect::<Vec<_>>(),
                    "question": ids_blake3(&q), "method": m, "rate": rate,
                    "check_layer": x.check_layer, "blend_use_v": x.blend_use_v,
                    "max_new_tokens": x.max_new_tokens, "stop_ids": tok.stop_ids(),
                });
                crate::device::add_to_preimage(&mut preimage, &device);
                if x.press != "no_press" {
                    // Only then: cells without a press keep their keys.
                    preimage["press"] = x.press.clone().into();
                    preimage["press_ratio"] = x.press_ratio.into();
                }
                let work = EvalWork {
                    gguf: StoreFile::of(model, &gguf),
                    prefix: meta.prefix.clone(),
                    segments: segments.clone(),
                    question: q.clone(),
                    method: m.clone(),
                    rate,
                    check_layer: x.check_layer as usize,
                    blend_use_v: x.blend_use_v,
                    max_new_tokens: x.max_new_tokens as usize,
                    stop_ids: tok.stop_ids(),
                    dtype: meta.dtype.clone(),
                    kv_dtype: meta.kv_dtype.clone(),
                    device: device.clone(),
                    press: x.press.clone(),
                    press_ratio: x.press_ratio,
                };
                specs.push(ctx.item_spec(
                    preimage,
                    serde_json::to_value(work).expect("work serializes"),
                ));
                cells.push((i, m.clone(), rate));
            }
        }
        samples.push(Sample {
            id: sid.get(i).unwrap_or("").to_string(),
            task: task.get(i).unwrap_or("").to_string(),
            answers: strs(answers.get_as_series(i))?,
        });
    }
    let mut progress = ctx.progress(specs.len() as u64, "fusions");
    let arts = ctx.items(&specs, &mut progress)?;
    let mut sc = Rows::default();
    let mut st = Rows::default();
    let (mut st_step, mut st_ms, mut st_ttft, mut st_tpot, mut st_n) =
        (vec![], vec![], vec![], vec![], vec![]);
    for ((i, m, rate), art) in cells.iter().zip(&arts) {
        let s = &samples[*i];
        let out: EvalOut =
            serde_json::from_slice(&std::fs::read(art.path("answer.json")).ctx("answer.json")?)
                .map_err(|e| other(format!("item {}: {e}", art.key())))?;
        let t: Timing = serde_json::from_value(art.manifest.provenance.measurements.clone())
            .map_err(|e| other(format!("item {}: measurements: {e}", art.key())))?;
        let text = tok.decode(&out.new_ids)?;
        let segs_total = (out.hits + out.misses).max(1) as f64;
        let vals = [
            ("f1", f1(&text, &s.answers)),
            ("exact_match", exact_match(&text, &s.answers)),
            ("rouge_l", rouge_l(&text, &s.answers)),
            ("ttft_ms", t.ttft_ms),
            ("load_ms", t.load_ms),
            ("select_ms", t.select_ms),
            ("recompute_ms", t.recompute_ms),
            ("press_ms", t.press_ms),
            ("first_token_ms", t.first_token_ms),
            ("tpot_ms", t.tpot_ms),
            (
                "recomputed_frac",
                out.recomputed as f64 / out.doc_len.max(1) as f64,
            ),
            ("reuse_hit_rate", out.hits as f64 / segs_total),
            ("corrupt_kv_files", out.corrupt as f64),
        ];
        for (metric, v) in vals {
            sc.push(&s.task, &s.id, m, *rate, metric, v);
        }
        for (k, ms) in std::iter::once(t.ttft_ms)
            .chain(t.step_ms.iter().copied())
            .enumerate()
        {
            st.push(&s.task, &s.id, m, *rate, "", 0.0);
            st_step.push(k as i64);
            st_ms.push(ms);
            st_ttft.push(t.ttft_ms);
            st_tpot.push(t.tpot_ms);
            st_n.push(out.new_ids.len() as i64);
        }
    }
    let rows = sc.sample.len();
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("task".into(), sc.task),
        Column::new("sample".into(), sc.sample),
        Column::new("method".into(), sc.method),
        Column::new("press".into(), vec![x.press.clone(); rows]),
        Column::new("ratio".into(), sc.ratio),
        Column::new("metric".into(), sc.metric),
        Column::new("value".into(), sc.value),
    ])?;
    write_parquet(&mut df, &ctx.out.join("scores.parquet"))?;
    let m = st.sample.len();
    let mut steps = DataFrame::new_infer_height(vec![
        Column::new("sample".into(), st.sample),
        Column::new("method".into(), st.method),
        Column::new("ratio".into(), st.ratio),
        Column::new("step".into(), st_step),
        Column::new("tokens_accepted".into(), vec![1i64; m]),
        Column::new("gamma".into(), vec![0i64; m]),
        Column::new("step_ms".into(), st_ms),
        Column::new("ttft_ms".into(), st_ttft),
        Column::new("tpot_ms".into(), st_tpot),
        Column::new("n_tokens".into(), st_n),
    ])?;
    write_parquet(&mut steps, &ctx.out.join("steps.parquet"))?;
    // Relative to vanilla: summary.parquet (the report shows it in full) and figures.
    let cells = fusion_cells(&df)?;
    write_parquet(&mut cells_frame(&cells)?, &ctx.out.join("summary.parquet"))?;
    let md = ctx.out.join("summary.md");
    std::fs::write(&md, cells_markdown(&cells)).ctx(md.display())?;
    let fmts = formats(&x.formats).map_err(other)?;
    fusion_figures(&cells, &fmts, ctx.out)?;
    Ok(())
}

#[derive(Default)]
struct Rows {
    task: Vec<String>,
    sample: Vec<String>,
    method: Vec<String>,
    ratio: Vec<f64>,
    metric: Vec<String>,
    value: Vec<f64>,
}

impl Rows {
    fn push(
        &mut self,
        task: &str,
        sample: &str,
        method: &str,
        ratio: f64,
        metric: &str,
        value: f64,
    ) {
        self.task.push(task.into());
        self.sample.push(sample.into());
        self.method.push(method.into());
        self.ratio.push(ratio);
        self.metric.push(metric.into());
        self.value.push(value);
    }
}

/// A chunk's KV and surprisal from its precompute item; a missing, truncated
/// or tampered file is never used: the chunk is recomputed (and counted).
fn load_segment(
    item: &ItemCtx,
    s: &SegWork,
    model: &crate::model::Model,
    prefix_kv: Option<&KvCache>,
) -> Result<(Segment, bool)> {
    if let Some(key) = &s.item {
        let kv = item.file(&StoreFile {
            object: key.clone(),
            path: "kv.bin".into(),
        })?;
        let sp = item.file(&StoreFile {
            object: key.clone(),
            path: "surprisal.json".into(),
        })?;
        let loaded = KvCache::load(&kv, model.device()).and_then(|kv| {
            let surprisal: Vec<f32> =
                serde_json::from_slice(&std::fs::read(&sp).ctx(sp.display())?)
                    .map_err(|e| other(format!("{}: {e}", sp.display())))?;
            Ok(Segment {
                ids: s.ids.clone(),
                kv,
                surprisal,
            })
        });
        match loaded {
            Ok(seg) if seg.kv.len(0) == s.ids.len() => return Ok((seg, true)),
            Ok(_) => tracing::warn!("{}: wrong length; recomputing the chunk", kv.display()),
            Err(e) => tracing::warn!("{e}; recomputing the chunk"),
        }
        return Ok((compute_alone(model, prefix_kv, &s.ids)?, false));
    }
    Ok((compute_alone(model, prefix_kv, &s.ids)?, true))
}

/// One (sample, selector, rate), from its spec alone.
fn compute_item(item: &ItemCtx) -> Result<serde_json::Value> {
    let w: EvalWork = item.work()?;
    let model = crate::loaded::model(&item.file(&w.gguf)?, &w.dtype, &w.kv_dtype, &w.device)?;
    let method =
        Method::parse(&w.method).ok_or_else(|| other(format!("selector '{}'", w.method)))?;
    // The shared prefix is cached across queries: not part of TTFT.
    let prefix_kv = (!w.prefix.is_empty())
        .then(|| compute_alone(&model, None, &w.prefix))
        .transpose()?
        .map(|s| s.kv);
    let t = Instant::now();
    let (mut hits, mut misses, mut corrupt, mut segments) = (0, 0, 0, vec![]);
    for s in &w.segments {
        if method == Method::Vanilla {
            segments.push(Segment {
                ids: s.ids.clone(),
                kv: model.new_cache(),
                surprisal: vec![0.0; s.ids.len()],
            });
            continue;
        }
        let (seg, ok) = load_segment(item, s, &model, prefix_kv.as_ref())?;
        match (&s.item, ok) {
            (Some(_), true) => hits += 1,
            (Some(_), false) => {
                misses += 1;
                corrupt += 1
            }
            (None, _) => misses += 1,
        }
        segments.push(seg);
    }
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let input = FusionInput {
        prefix: w.prefix.clone(),
        prefix_kv,
        segments,
        question: w.question.clone(),
    };
    let lens = input.seg_lens();
    let opts = FuseOpts {
        rate: w.rate,
        check_layer: w.check_layer,
        blend_use_v: w.blend_use_v,
        attnlink: chunk_starts(&lens, budget(w.rate, input.doc_len())),
    };
    let mut f = fuse(&model, &input, method, &opts)?;
    let mut logits = f
        .logits
        .take()
        .ok_or_else(|| other("fusion_eval: empty prompt"))?;
    let t = Instant::now();
    if w.press != "no_press" {
        let press = Press::from_name("fusion_eval", &w.press)?;
        let q = &w.question;
        let tail = if method == Method::Cat {
            &q[q.len().saturating_sub(1)..]
        } else {
            &q[..]
        };
        let (_, rerun) = press_fused(&model, &mut f.cache, tail, &press, w.press_ratio)?;
        logits = rerun.unwrap_or(logits);
    }
    let press_ms = t.elapsed().as_secs_f64() * 1e3;
    let a = greedy(&model, &mut f.cache, &logits, w.max_new_tokens, &w.stop_ids)?;
    let select_ms = f.assemble_ms + f.select_ms;
    let timing = Timing {
        load_ms,
        select_ms,
        recompute_ms: f.recompute_ms,
        press_ms,
        first_token_ms: a.first_token_ms,
        ttft_ms: load_ms + select_ms + f.recompute_ms + press_ms + a.first_token_ms,
        tpot_ms: a.tpot_ms(),
        step_ms: a.step_ms.clone(),
    };
    let out = EvalOut {
        new_ids: a.new_ids,
        doc_len: f.doc_len,
        recomputed: f.recomputed.len(),
        hits,
        misses,
        corrupt,
    };
    let path = item.out.join("answer.json");
    std::fs::write(&path, serde_json::to_vec(&out).expect("answer serializes"))
        .ctx(path.display())?;
    Ok(serde_json::to_value(timing).expect("timing serializes"))
}
