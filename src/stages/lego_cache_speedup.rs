//! Stage `lego_cache_speedup`: with vs without the KV cache (library:
//! `eval::cache_speedup`), one item per length; the timings are the items'
//! measurements, their tokens agree by construction.

use crate::dag::item::{ItemCtx, StoreFile};
use crate::dag::params::Params;
use crate::dag::stage::{StageCtx, StageKind};
use crate::error::{other, Result};
use crate::eval::cache_speedup::cache_speedup;
use crate::plot::bars::{bar_chart, BarOptions, Group};
use crate::plot::Figure;
use crate::table::write_parquet;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

pub const KIND: StageKind = StageKind {
    kind: "lego_cache_speedup",
    version: 1,
    inputs: &["train"],
    all_upstream: false,
    optional_inputs: &["model", "text"],
    unhashed: &[],
    defaults: include_str!("../../stages/lego_cache_speedup.toml"),
    resolve,
    run,
    compute_item: Some(compute_item),
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheParams {
    lengths: Vec<i64>,
    prompt_tokens: i64,
    formats: Vec<String>,
}

fn resolve(p: &mut Params) -> Result<()> {
    let x: CacheParams = p.parse()?;
    if x.lengths.is_empty() {
        return Err(p.err("lengths", "must list at least one length"));
    }
    if let Some(l) = x.lengths.iter().find(|&&l| l < 1) {
        return Err(p.err("lengths", format!("{l} must be >= 1")));
    }
    if x.prompt_tokens < 1 {
        return Err(p.err("prompt_tokens", "must be >= 1"));
    }
    super::common::figure_formats(p, &x.formats).map(|_| ())
}

#[derive(Serialize, Deserialize)]
struct CacheWork {
    model: StoreFile,
    prompt: Vec<u32>,
    new_tokens: usize,
}

fn run(ctx: &StageCtx) -> Result<()> {
    let x: CacheParams = ctx.params.parse()?;
    let len = x.prompt_tokens as usize;
    let (model, digest, prompt) = if ctx.inputs.contains_key("model") {
        let gguf = super::common::model_file(ctx)?;
        let m = ctx.input("model")?;
        let text = std::fs::read_to_string(ctx.input_file("text", "")?)
            .map_err(|e| ctx.params.err("inputs.text", e))?;
        let ids = crate::loaded::tokenizer(&gguf)?.encode(&text)?;
        (
            StoreFile::of(m, &gguf),
            m.manifest.content_digest(),
            ids[..len.min(ids.len())].to_vec(),
        )
    } else {
        let train = ctx.input("train")?;
        let val: Vec<Vec<u32>> = super::common::read_json(&train.path("val_windows.json"))?;
        let w = &val[0];
        let cfg = train.path("phase2/config.json");
        (
            StoreFile::of(train, &cfg),
            train.manifest.content_digest(),
            w[..len.min(w.len())].to_vec(),
        )
    };
    let specs: Vec<_> = x
        .lengths
        .iter()
        .map(|&n| {
            let preimage =
                serde_json::json!({ "model": digest, "prompt": prompt, "new_tokens": n });
            let work = CacheWork {
                model: model.clone(),
                prompt: prompt.clone(),
                new_tokens: n as usize,
            };
            ctx.item_spec(
                preimage,
                serde_json::to_value(work).expect("work serializes"),
            )
        })
        .collect();
    let mut progress = ctx.progress(specs.len() as u64, "lengths");
    let items = ctx.items(&specs, &mut progress)?;
    let (mut with, mut without, mut speed) = (vec![], vec![], vec![]);
    for item in &items {
        let m = &item.manifest.provenance.measurements;
        let get = |k: &str| {
            m[k].as_f64()
                .ok_or_else(|| other(format!("item {}: no {k}", item.key())))
        };
        with.push(get("with_cache_s")?);
        without.push(get("without_cache_s")?);
        speed.push(get("without_cache_s")? / get("with_cache_s")?);
    }
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("new_tokens".into(), x.lengths.clone()),
        Column::new("with_cache_s".into(), with),
        Column::new("without_cache_s".into(), without),
        Column::new("speedup".into(), speed.clone()),
    ])?;
    write_parquet(&mut df, &ctx.out.join("cache_speedup.parquet"))?;
    let cats: Vec<String> = x.lengths.iter().map(|l| l.to_string()).collect();
    let fig = Figure::new(
        "KV-cache speedup (no cache / cache)",
        "new tokens",
        "speedup",
    );
    for f in super::common::figure_formats(ctx.params, &x.formats)? {
        let path = ctx.out.join(format!("cache_speedup.{}", f.ext()));
        bar_chart(
            &fig,
            &cats,
            &[Group::new("speedup", speed.clone())],
            &BarOptions::default(),
            &path,
        )?;
    }
    Ok(())
}

fn compute_item(item: &ItemCtx) -> Result<serde_json::Value> {
    let w: CacheWork = item.work()?;
    let model = super::common::load_model(&item.file(&w.model)?)?;
    let r = cache_speedup(&model, &w.prompt, w.new_tokens)?;
    let path = item.out.join("cache.json");
    std::fs::write(&path, format!("{{\"new_tokens\":{}}}", r.new_tokens))
        .map_err(|e| other(format!("write {}: {e}", path.display())))?;
    Ok(serde_json::json!({ "with_cache_s": r.with_cache_s, "without_cache_s": r.without_cache_s }))
}
