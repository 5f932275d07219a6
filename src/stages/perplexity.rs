//! Stage `perplexity`: windowed perplexity of a text -> `scores.parquet`
//! (task, sample, method, press, ratio, metric, value).

use crate::dag::item::{ItemCtx, ItemSpec, StoreFile};
use crate::dag::params::Params;
use crate::dag::stage::{StageCtx, StageKind};
use crate::error::{IoContext, Result};
use crate::eval::perplexity::{first_scored, window_ids, window_nll, window_starts};
use crate::store::hashing::ids_blake3;
use crate::table::write_parquet;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

pub const KIND: StageKind = StageKind {
    kind: "perplexity",
    // 3: BOS first in each window of a model that asks for it (Gemma).
    version: 3,
    inputs: &["model", "text"],
    all_upstream: false,
    optional_inputs: &[],
    unhashed: &[],
    defaults: include_str!("../../stages/perplexity.toml"),
    resolve,
    run,
    compute_item: Some(compute_item),
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PerplexityParams {
    window: i64,
    stride: i64,
    max_windows: i64,
    dtype: String,
    kv_dtype: String,
    device: String,
    text_name: String,
}

fn resolve(p: &mut Params) -> Result<()> {
    let x: PerplexityParams = p.parse()?;
    if x.window < 2 {
        return Err(p.err("window", "must be >= 2"));
    }
    if x.stride <= 0 || x.stride > x.window {
        return Err(p.err("stride", format!("must be in 1..={}", x.window)));
    }
    if x.max_windows < 0 {
        return Err(p.err("max_windows", "must be >= 0"));
    }
    super::common::check_load(p, &x.dtype, &x.kv_dtype, &x.device)
}

/// One window to score (the item's work; see `dag::item`).
#[derive(Serialize, Deserialize)]
struct WindowWork {
    gguf: StoreFile,
    ids: Vec<u32>,
    first: usize,
    dtype: String,
    kv_dtype: String,
    device: String,
}

/// What an item holds: the window's summed NLL and how many tokens it scored.
#[derive(Serialize, Deserialize)]
struct WindowScore {
    nll_sum: f64,
    scored: usize,
}

fn run(ctx: &StageCtx) -> Result<()> {
    let x: PerplexityParams = ctx.params.parse()?;
    let gguf = super::common::model_file(ctx)?;
    let model = ctx.input("model")?;
    let text_file = ctx.input_file("text", ".txt")?;
    let text = std::fs::read_to_string(&text_file).ctx(format!("read {}", text_file.display()))?;
    let tok = crate::loaded::tokenizer(&gguf)?;
    let ids = tok.encode(&text)?;
    let (window, stride) = (x.window as usize, x.stride as usize);
    let starts = window_starts(ids.len(), window, stride, x.max_windows as usize);
    if starts.is_empty() {
        return Err(ctx.params.err(
            "window",
            format!("the text has {} tokens, fewer than one window", ids.len()),
        ));
    }
    let digest = model.manifest.content_digest();
    // BOS first where the model asks for it (in the ids, so in the key).
    let bos = tok.model_bos();
    let specs: Vec<ItemSpec> = starts
        .iter()
        .enumerate()
        .map(|(w, &s)| {
            let chunk = &window_ids(&ids, s, window, bos);
            let first = first_scored(w, window, stride);
            let mut preimage = serde_json::json!({
                "model": digest,
                "ids": ids_blake3(chunk),
                "first": first,
                "dtype": x.dtype,
                "kv_dtype": x.kv_dtype,
            });
            crate::device::add_to_preimage(&mut preimage, &x.device);
            let work = WindowWork {
                gguf: StoreFile::of(model, &gguf),
                ids: chunk.to_vec(),
                first,
                dtype: x.dtype.clone(),
                kv_dtype: x.kv_dtype.clone(),
                device: x.device.clone(),
            };
            ctx.item_spec(
                preimage,
                serde_json::to_value(work).expect("work serializes"),
            )
        })
        .collect();
    let mut progress = ctx.progress(specs.len() as u64, "windows");
    let items = ctx.items(&specs, &mut progress)?;
    let mut nll_per_window = Vec::new();
    let (mut total, mut count) = (0.0f64, 0usize);
    for item in &items {
        let path = item.path("window.json");
        let text = std::fs::read_to_string(&path).ctx(format!("read {}", path.display()))?;
        let w: WindowScore = serde_json::from_str(&text)
            .map_err(|e| crate::error::other(format!("{}: {e}", path.display())))?;
        nll_per_window.push(w.nll_sum / w.scored as f64);
        total += w.nll_sum;
        count += w.scored;
    }
    let ppl = (total / count as f64).exp();
    let n = nll_per_window.len();
    let mut samples: Vec<String> = (0..n).map(|i| format!("window{i:04}")).collect();
    let mut metrics = vec!["nll".to_string(); n];
    let mut values = nll_per_window;
    samples.extend(["all".to_string(), "all".to_string(), "all".to_string()]);
    metrics.extend(["ppl".to_string(), "nll".to_string(), "tokens".to_string()]);
    values.extend([ppl, ppl.ln(), count as f64]);
    let rows = samples.len();
    let mut df = DataFrame::new_infer_height(vec![
        Column::new(
            "task".into(),
            vec![format!("perplexity:{}", x.text_name); rows],
        ),
        Column::new("sample".into(), samples),
        Column::new(
            "method".into(),
            vec![format!("window{}/stride{}", x.window, x.stride); rows],
        ),
        Column::new("press".into(), vec!["no_press".to_string(); rows]),
        Column::new("ratio".into(), vec![0.0f64; rows]),
        Column::new("metric".into(), metrics),
        Column::new("value".into(), values),
    ])?;
    write_parquet(&mut df, &ctx.out.join("scores.parquet"))
}

/// One window's score, from its spec alone.
fn compute_item(item: &ItemCtx) -> Result<serde_json::Value> {
    let w: WindowWork = item.work()?;
    let model = crate::loaded::model(&item.file(&w.gguf)?, &w.dtype, &w.kv_dtype, &w.device)?;
    let (nll_sum, scored) = window_nll(&model, &w.ids, w.first)?;
    let out = item.out.join("window.json");
    let text = serde_json::to_vec(&WindowScore { nll_sum, scored }).expect("score serializes");
    std::fs::write(&out, text).ctx(format!("write {}", out.display()))?;
    Ok(serde_json::Value::Null)
}
