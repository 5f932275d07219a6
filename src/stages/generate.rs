//! Stage `generate`: continuations of prompts -> `outputs.parquet` (one row
//! per prompt) and `steps.parquet` (one row per decoding step, with TTFT/TPOT).

use crate::dag::item::{ItemCtx, StoreFile};
use crate::dag::params::Params;
use crate::dag::stage::{StageCtx, StageKind};
use crate::data::prompts::{load_prompts, DATASETS};
use crate::decode::generate::{generate, GenerateOpts};
use crate::error::{other, IoContext, Result};
use crate::store::hashing::ids_blake3;
use crate::table::write_parquet;
use crate::tokenizer::ChatMessage;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

pub const KIND: StageKind = StageKind {
    kind: "generate",
    version: 2,
    inputs: &["model", "prompts"],
    all_upstream: false,
    optional_inputs: &[],
    unhashed: &[],
    defaults: include_str!("../../stages/generate.toml"),
    resolve,
    run,
    compute_item: Some(compute_item),
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateParams {
    dataset: String,
    max_prompts: i64,
    chat: bool,
    max_new_tokens: i64,
    temperature: f64,
    seed: i64,
    stop_at_eos: bool,
    dtype: String,
    kv_dtype: String,
    // Speculative decoding (decode::spec): accepted, not yet used by this stage.
    #[allow(dead_code)]
    draft: String,
    #[allow(dead_code)]
    gamma: i64,
    #[allow(dead_code)]
    dynamic_gamma: String,
    #[allow(dead_code)]
    gamma_floor: i64,
    #[allow(dead_code)]
    gamma_cap: i64,
    #[allow(dead_code)]
    self_spec_layers: i64,
    #[allow(dead_code)]
    lookup_ngram: i64,
    #[allow(dead_code)]
    top_k: i64,
    #[allow(dead_code)]
    top_p: f64,
    #[allow(dead_code)]
    rekv: bool,
    #[allow(dead_code)]
    recycle: String,
}

fn resolve(p: &mut Params) -> Result<()> {
    let g: GenerateParams = p.parse()?;
    if !DATASETS.contains(&g.dataset.as_str()) {
        return Err(p.err(
            "dataset",
            format!("'{}' is not one of {}", g.dataset, DATASETS.join(", ")),
        ));
    }
    if g.max_new_tokens <= 0 {
        return Err(p.err("max_new_tokens", "must be > 0"));
    }
    if g.max_prompts < 0 {
        return Err(p.err("max_prompts", "must be >= 0"));
    }
    if !(0.0..=10.0).contains(&g.temperature) {
        return Err(p.err(
            "temperature",
            format!("{} is outside [0, 10]", g.temperature),
        ));
    }
    super::common::check_dtype(p, &g.dtype, &g.kv_dtype)
}

/// Everything that decides a generation besides the model and the prompt;
/// hashed into every item's key, so changing one recomputes every generation.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Decoding {
    max_new_tokens: usize,
    temperature: f64,
    seed: u64,
    stop_ids: Vec<u32>,
    dtype: String,
    kv_dtype: String,
}

/// One generation to compute (the item's work; see `dag::item`).
#[derive(Serialize, Deserialize)]
struct GenerateWork {
    gguf: StoreFile,
    prompt_ids: Vec<u32>,
    decoding: Decoding,
}

/// What an item holds: the tokens, and why generation stopped.
#[derive(Serialize, Deserialize)]
struct GeneratedTokens {
    new_ids: Vec<u32>,
    stop_reason: String,
}

/// An item's measurements (manifest provenance, not hashed).
#[derive(Serialize, Deserialize)]
struct Timing {
    ttft_ms: f64,
    tpot_ms: f64,
    step_ms: Vec<f64>,
}

fn run(ctx: &StageCtx) -> Result<()> {
    let g: GenerateParams = ctx.params.parse()?;
    let gguf = super::common::model_file(ctx)?;
    let model = ctx.input("model")?;
    let prompt_file = ctx.input_file("prompts", ".jsonl")?;
    let mut prompts = load_prompts(&g.dataset, &prompt_file)?;
    if g.max_prompts > 0 {
        prompts.truncate(g.max_prompts as usize);
    }
    if prompts.is_empty() {
        return Err(ctx
            .params
            .err("inputs.prompts", "empty dataset: no prompts"));
    }
    let tok = crate::loaded::tokenizer(&gguf)?;
    let decoding = Decoding {
        max_new_tokens: g.max_new_tokens as usize,
        temperature: g.temperature,
        seed: g.seed as u64,
        stop_ids: if g.stop_at_eos {
            tok.stop_ids()
        } else {
            vec![]
        },
        dtype: g.dtype.clone(),
        kv_dtype: g.kv_dtype.clone(),
    };
    let digest = model.manifest.content_digest();
    let mut prompt_ids = Vec::with_capacity(prompts.len());
    let mut specs = Vec::with_capacity(prompts.len());
    for p in &prompts {
        let text = if g.chat {
            tok.apply_chat_template(
                &[ChatMessage {
                    role: "user".into(),
                    content: p.text.clone(),
                }],
                true,
            )?
        } else {
            p.text.clone()
        };
        let ids = tok.encode_for_model(&text)?;
        let preimage = serde_json::json!({
            "model": digest,
            "prompt": ids_blake3(&ids),
            "decoding": decoding,
        });
        let work = GenerateWork {
            gguf: StoreFile::of(model, &gguf),
            prompt_ids: ids.clone(),
            decoding: decoding.clone(),
        };
        specs.push(ctx.item_spec(
            preimage,
            serde_json::to_value(work).expect("work serializes"),
        ));
        prompt_ids.push(ids);
    }
    let mut progress = ctx.progress(specs.len() as u64, "prompts");
    let items = ctx.items(&specs, &mut progress)?;
    let method = if g.temperature > 0.0 {
        "sample"
    } else {
        "greedy"
    };
    let mut out = OutputRows::default();
    let mut steps = StepRows::default();
    for ((p, ids), item) in prompts.iter().zip(&prompt_ids).zip(&items) {
        let gen: GeneratedTokens = read_json(&item.path("generation.json"))?;
        let timing: Timing = serde_json::from_value(item.manifest.provenance.measurements.clone())
            .map_err(|e| other(format!("item {}: measurements: {e}", item.key())))?;
        let sample = format!("{}-{}", g.dataset, p.id);
        for (i, ms) in timing.step_ms.iter().enumerate() {
            steps.sample.push(sample.clone());
            steps.step.push(i as i64);
            steps.step_ms.push(*ms);
            steps.ttft_ms.push(timing.ttft_ms);
            steps.tpot_ms.push(timing.tpot_ms);
            steps.n_tokens.push(gen.new_ids.len() as i64);
        }
        out.sample.push(sample);
        out.prompt.push(p.text.clone());
        out.prompt_tokens.push(ids.len() as i64);
        out.text.push(tok.decode(&gen.new_ids)?);
        out.new_ids
            .push(Series::new("".into(), gen.new_ids.clone()));
        out.n_tokens.push(gen.new_ids.len() as i64);
        out.ttft_ms.push(timing.ttft_ms);
        out.tpot_ms.push(timing.tpot_ms);
        out.stop.push(gen.stop_reason);
    }
    let n = out.sample.len();
    let mut outputs = DataFrame::new_infer_height(vec![
        Column::new("sample".into(), out.sample),
        Column::new("dataset".into(), vec![g.dataset.clone(); n]),
        Column::new("method".into(), vec![method.to_string(); n]),
        Column::new("prompt".into(), out.prompt),
        Column::new("prompt_tokens".into(), out.prompt_tokens),
        Column::new("text".into(), out.text),
        Column::new("new_ids".into(), out.new_ids),
        Column::new("n_tokens".into(), out.n_tokens),
        Column::new("ttft_ms".into(), out.ttft_ms),
        Column::new("tpot_ms".into(), out.tpot_ms),
        Column::new("stop_reason".into(), out.stop),
    ])?;
    write_parquet(&mut outputs, &ctx.out.join("outputs.parquet"))?;
    let m = steps.sample.len();
    let mut steps_df = DataFrame::new_infer_height(vec![
        Column::new("sample".into(), steps.sample),
        Column::new("method".into(), vec![method.to_string(); m]),
        Column::new("step".into(), steps.step),
        Column::new("tokens_accepted".into(), vec![1i64; m]),
        Column::new("gamma".into(), vec![0i64; m]),
        Column::new("step_ms".into(), steps.step_ms),
        Column::new("ttft_ms".into(), steps.ttft_ms),
        Column::new("tpot_ms".into(), steps.tpot_ms),
        Column::new("n_tokens".into(), steps.n_tokens),
    ])?;
    write_parquet(&mut steps_df, &ctx.out.join("steps.parquet"))
}

#[derive(Default)]
struct OutputRows {
    sample: Vec<String>,
    prompt: Vec<String>,
    prompt_tokens: Vec<i64>,
    text: Vec<String>,
    new_ids: Vec<Series>,
    n_tokens: Vec<i64>,
    ttft_ms: Vec<f64>,
    tpot_ms: Vec<f64>,
    stop: Vec<String>,
}

#[derive(Default)]
struct StepRows {
    sample: Vec<String>,
    step: Vec<i64>,
    step_ms: Vec<f64>,
    ttft_ms: Vec<f64>,
    tpot_ms: Vec<f64>,
    n_tokens: Vec<i64>,
}

/// One generation, from its spec alone.
fn compute_item(item: &ItemCtx) -> Result<serde_json::Value> {
    let w: GenerateWork = item.work()?;
    let d = &w.decoding;
    let model = crate::loaded::model(&item.file(&w.gguf)?, &d.dtype, &d.kv_dtype)?;
    let opts = GenerateOpts {
        max_new_tokens: d.max_new_tokens,
        temperature: d.temperature,
        seed: d.seed,
        stop_ids: d.stop_ids.clone(),
    };
    let gen = generate(&model, &w.prompt_ids, &opts)?;
    let tokens = GeneratedTokens {
        new_ids: gen.new_ids,
        stop_reason: gen.stop_reason,
    };
    let path = item.out.join("generation.json");
    let text = serde_json::to_vec(&tokens).expect("tokens serialize");
    std::fs::write(&path, text).ctx(format!("write {}", path.display()))?;
    let timing = Timing {
        ttft_ms: gen.ttft_ms,
        tpot_ms: gen.tpot_ms,
        step_ms: gen.step_ms,
    };
    Ok(serde_json::to_value(timing).expect("timing serializes"))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    let text = std::fs::read_to_string(path).ctx(format!("read {}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| other(format!("{}: {e}", path.display())))
}
