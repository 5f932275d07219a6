//! Stage `attention`: attention analysis of a text (seed 002, phase 0), one
//! item per window (model digest, the window's ids, the settings): the
//! last `n_queries` queries' full attention, accumulated by
//! `analysis::attention_stats`, tables and figures by `attention_output`.

use crate::analysis::attention_stats::AttentionStats;
use crate::analysis::token_type::{classify, TYPES};
use crate::dag::item::{ItemCtx, StoreFile};
use crate::dag::params::Params;
use crate::dag::stage::{StageCtx, StageKind};
use crate::error::{IoContext, Result};
use crate::model::{ForwardOpts, Logits, Observe, Pool};
use crate::store::hashing::ids_blake3;
use serde::{Deserialize, Serialize};

pub const KIND: StageKind = StageKind {
    kind: "attention",
    version: 1,
    inputs: &["model", "text"],
    all_upstream: false,
    optional_inputs: &[],
    unhashed: &[],
    defaults: include_str!("../../stages/attention.toml"),
    resolve,
    run,
    compute_item: Some(compute_item),
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttentionParams {
    window: i64,
    max_windows: i64,
    n_queries: i64,
    n_sink: i64,
    recent: i64,
    dtype: String,
    kv_dtype: String,
    device: String,
}

fn resolve(p: &mut Params) -> Result<()> {
    let x: AttentionParams = p.parse()?;
    if x.window < 8 {
        return Err(p.err("window", "must be >= 8"));
    }
    if x.n_queries < 1 || x.n_queries > x.window {
        return Err(p.err("n_queries", format!("must be in 1..={}", x.window)));
    }
    if x.max_windows < 0 || x.n_sink < 0 || x.recent < 0 {
        return Err(p.err("max_windows", "max_windows, n_sink, recent must be >= 0"));
    }
    super::common::check_load(p, &x.dtype, &x.kv_dtype, &x.device)
}

#[derive(Serialize, Deserialize)]
struct WindowWork {
    gguf: StoreFile,
    ids: Vec<u32>,
    /// Token type index (into `TYPES`) per id.
    types: Vec<usize>,
    n_queries: usize,
    n_sink: usize,
    recent: usize,
    dtype: String,
    kv_dtype: String,
    device: String,
}

fn run(ctx: &StageCtx) -> Result<()> {
    let x: AttentionParams = ctx.params.parse()?;
    let gguf = super::common::model_file(ctx)?;
    let model = ctx.input("model")?;
    let f = ctx.input_file("text", ".txt")?;
    let text = std::fs::read_to_string(&f).ctx(format!("read {}", f.display()))?;
    let tok = crate::loaded::tokenizer(&gguf)?;
    let ids = tok.encode(&text)?;
    let w = x.window as usize;
    let starts = crate::eval::perplexity::window_starts(ids.len(), w, w, x.max_windows as usize);
    if starts.is_empty() {
        return Err(ctx.params.err(
            "window",
            format!("the text has {} tokens, fewer than one window", ids.len()),
        ));
    }
    let specs: Vec<_> = starts
        .iter()
        .map(|&s| {
            let chunk = &ids[s..s + w];
            let types = chunk
                .iter()
                .map(|&i| {
                    let t = classify(&tok.token_text(i).unwrap_or_default(), tok.is_special(i));
                    TYPES.iter().position(|x| *x == t).expect("a known type")
                })
                .collect();
            let mut preimage = serde_json::json!({
                "model": model.manifest.content_digest(),
                "ids": ids_blake3(chunk),
                "n_queries": x.n_queries, "n_sink": x.n_sink, "recent": x.recent,
                "dtype": x.dtype, "kv_dtype": x.kv_dtype,
            });
            crate::device::add_to_preimage(&mut preimage, &x.device);
            let work = WindowWork {
                gguf: StoreFile::of(model, &gguf),
                ids: chunk.to_vec(),
                types,
                n_queries: x.n_queries as usize,
                n_sink: x.n_sink as usize,
                recent: x.recent as usize,
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
    let mut total: Option<AttentionStats> = None;
    for item in &items {
        let path = item.path("stats.json");
        let text = std::fs::read_to_string(&path).ctx(format!("read {}", path.display()))?;
        let s: AttentionStats = serde_json::from_str(&text)
            .map_err(|e| crate::error::other(format!("{}: {e}", path.display())))?;
        match &mut total {
            Some(t) => t.merge(&s),
            None => total = Some(s),
        }
    }
    crate::analysis::attention_output::write(&total.expect("one window"), ctx.out)
}

fn compute_item(item: &ItemCtx) -> Result<serde_json::Value> {
    let w: WindowWork = item.work()?;
    let model = crate::loaded::model(&item.file(&w.gguf)?, &w.dtype, &w.kv_dtype, &w.device)?;
    let t = w.ids.len();
    let q0 = t - w.n_queries;
    let opts = ForwardOpts {
        logits: Logits::None,
        observe: Some(Observe {
            queries: q0..t,
            pool: Pool::Full,
        }),
        ..Default::default()
    };
    let pos: Vec<i64> = (0..t as i64).collect();
    let out = model.forward(&w.ids, &pos, &mut model.new_cache(), &opts)?;
    let cfg = model.config();
    let mut s = AttentionStats::new(cfg.n_layers, cfg.n_heads, TYPES.len(), t);
    for (l, a) in out.attention.iter().enumerate() {
        let a: Vec<Vec<Vec<f32>>> = a.to_dtype(candle_core::DType::F32)?.to_vec3()?;
        s.add_layer(l, &a, q0, &w.types, w.n_sink, w.recent);
    }
    let path = item.out.join("stats.json");
    let text = serde_json::to_vec(&s).expect("stats serialize");
    std::fs::write(&path, text).ctx(format!("write {}", path.display()))?;
    Ok(serde_json::Value::Null)
}
