//! Stage `generate`: continuations of prompts -> `outputs.parquet` (one row
//! per prompt × method) and `steps.parquet` (one row per decoding step or
//! speculative round, with TTFT/TPOT), plus `rejections.parquet` with ReKV.
//! One item per (model, prompt ids, decoding method): a new prompt or a new
//! gamma of a sweep is one more item (see `dag::item`).

use super::generate_tables::{assemble, write_item, Row};
use crate::dag::item::{ItemCtx, StoreFile};
use crate::dag::params::Params;
use crate::dag::stage::{StageCtx, StageKind};
use crate::data::prompts::{load_prompts, DATASETS};
use crate::decode::cache_press::DecodePress;
use crate::decode::method::{decode, Decoding, Helpers, Speculation, DRAFTS};
use crate::decode::spec::vocab_digest;
use crate::error::Result;
use crate::store::hashing::ids_blake3;
use crate::tokenizer::ChatMessage;
use serde::{Deserialize, Serialize};

pub const KIND: StageKind = StageKind {
    kind: "generate",
    version: 4,
    inputs: &["model", "prompts"],
    all_upstream: false,
    optional_inputs: &["draft", "intermediate"],
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
    device: String,
    draft: String,
    gamma: i64,
    dynamic_gamma: String,
    gamma_floor: i64,
    gamma_cap: i64,
    self_spec_layers: i64,
    lookup_ngram: i64,
    top_k: i64,
    top_p: f64,
    rekv: bool,
    recycle: String,
    recycle_from_layer: i64,
    gamma_sweep: Vec<i64>,
    press: String,
    press_ratio: f64,
    press_on: String,
    press_every: i64,
}

impl GenerateParams {
    /// The speculative settings for one gamma (None for plain decoding).
    fn speculation(&self, gamma: i64, cascade: bool) -> Option<Speculation> {
        (self.draft != "none").then(|| Speculation {
            draft: self.draft.clone(),
            gamma: gamma.max(0) as usize,
            dynamic_gamma: self.dynamic_gamma.clone(),
            gamma_floor: self.gamma_floor.max(0) as usize,
            gamma_cap: self.gamma_cap.max(0) as usize,
            self_spec_layers: self.self_spec_layers.max(0) as usize,
            lookup_ngram: self.lookup_ngram.max(0) as usize,
            intermediate: cascade,
            rekv: self.rekv,
            recycle: self.recycle.clone(),
            // Hashed only where it matters (a target mode).
            recycle_from_layer: if matches!(self.recycle.as_str(), "target" | "both") {
                self.recycle_from_layer.max(0) as usize
            } else {
                0
            },
        })
    }

    /// The press during decoding (None when it evicts nothing).
    fn press(&self) -> Option<DecodePress> {
        let p = DecodePress {
            name: self.press.clone(),
            ratio: self.press_ratio,
            on: self.press_on.clone(),
            every: self.press_every.max(0) as usize,
        };
        (!p.is_noop()).then_some(p)
    }

    fn gammas(&self) -> Vec<i64> {
        if self.gamma_sweep.is_empty() {
            vec![self.gamma]
        } else {
            self.gamma_sweep.clone()
        }
    }
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
    if g.top_k < 0 {
        return Err(p.err("top_k", "must be >= 0"));
    }
    if !(g.top_p > 0.0 && g.top_p <= 1.0) {
        return Err(p.err("top_p", format!("{} is outside (0, 1]", g.top_p)));
    }
    if !DRAFTS.contains(&g.draft.as_str()) {
        return Err(p.err(
            "draft",
            format!("'{}' is not one of {}", g.draft, DRAFTS.join(", ")),
        ));
    }
    for (name, v) in [
        ("gamma", g.gamma),
        ("gamma_floor", g.gamma_floor),
        ("gamma_cap", g.gamma_cap),
        ("self_spec_layers", g.self_spec_layers),
        ("lookup_ngram", g.lookup_ngram),
    ] {
        if v < 1 {
            return Err(p.err(name, format!("must be >= 1, got {v}")));
        }
    }
    if g.recycle_from_layer < 0 {
        return Err(p.err("recycle_from_layer", "must be >= 0"));
    }
    if let Some(bad) = g.gamma_sweep.iter().find(|&&x| x < 1) {
        return Err(p.err(
            "gamma_sweep",
            format!("every gamma must be >= 1, got {bad}"),
        ));
    }
    if g.draft == "none" {
        if g.top_k != 0 || g.top_p != 1.0 {
            return Err(p.err(
                "top_k",
                "top_k / top_p apply to speculative decoding only (set draft)",
            ));
        }
        if !g.gamma_sweep.is_empty() {
            return Err(p.err("gamma_sweep", "a gamma sweep needs a draft (set draft)"));
        }
    }
    for gamma in g.gammas() {
        if let Some(s) = g.speculation(gamma, false) {
            let field = if g.gamma_sweep.is_empty() {
                "gamma"
            } else {
                "gamma_sweep"
            };
            s.check()
                .map_err(|(f, m)| p.err(if f == "gamma" { field } else { f }, m))?;
        }
    }
    check_press(p, &g)?;
    super::common::check_load(p, &g.dtype, &g.kv_dtype, &g.device)
}

fn check_press(p: &Params, g: &GenerateParams) -> Result<()> {
    let d = DecodePress {
        name: g.press.clone(),
        ratio: g.press_ratio,
        on: g.press_on.clone(),
        every: 0,
    };
    d.check().map_err(|(f, m)| p.err(f, m))?;
    if g.press_every < 0 {
        return Err(p.err("press_every", "must be >= 0"));
    }
    if d.on_draft() && g.draft == "none" {
        return Err(p.err(
            "press_on",
            "plain decoding has no draft: press_on = \"target\"",
        ));
    }
    Ok(())
}

/// One generation to compute (the item's work; see `dag::item`).
#[derive(Serialize, Deserialize)]
struct GenerateWork {
    gguf: StoreFile,
    draft: Option<StoreFile>,
    intermediate: Option<StoreFile>,
    prompt_ids: Vec<u32>,
    decoding: Decoding,
    /// Not in `Decoding`, whose JSON is hashed whole: see `device::add_to_preimage`.
    device: String,
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
    let helper = |role: &str| -> Result<Option<(StoreFile, String)>> {
        if !ctx.inputs.contains_key(role) {
            return Ok(None);
        }
        let path = ctx.input_file(role, ".gguf")?;
        let digest = vocab_digest_of(&path)?;
        if digest != vocab_digest_of(&gguf)? {
            return Err(ctx.params.err(
                &format!("inputs.{role}"),
                "its vocabulary differs from the target's (a draft must share the tokenizer)",
            ));
        }
        let a = ctx.input(role)?;
        Ok(Some((StoreFile::of(a, &path), a.manifest.content_digest())))
    };
    let draft = helper("draft")?;
    let intermediate = helper("intermediate")?;
    if g.press().is_some_and(|d| d.on_draft())
        && intermediate.is_none()
        && matches!(g.draft.as_str(), "self" | "lookup")
    {
        return Err(ctx.params.err(
            "press_on",
            "the draft has no cache of its own (self-speculation shares the target's, \
             prompt lookup has none): press_on = \"target\"",
        ));
    }
    if g.draft == "model" && draft.is_none() {
        return Err(ctx.params.err(
            "inputs.draft",
            "draft = \"model\" needs a `draft` input (a fetch stage of a GGUF)",
        ));
    }
    let methods: Vec<Decoding> = g
        .gammas()
        .into_iter()
        .map(|gamma| Decoding {
            max_new_tokens: g.max_new_tokens as usize,
            temperature: g.temperature,
            top_k: g.top_k as usize,
            top_p: g.top_p,
            seed: g.seed as u64,
            stop_ids: if g.stop_at_eos {
                tok.stop_ids()
            } else {
                vec![]
            },
            dtype: g.dtype.clone(),
            kv_dtype: g.kv_dtype.clone(),
            spec: g.speculation(gamma, intermediate.is_some()),
            press: g.press(),
        })
        .collect();
    let digest = model.manifest.content_digest();
    let mut rows = Vec::new();
    let mut specs = Vec::new();
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
        for d in &methods {
            let mut preimage = serde_json::json!({
                "model": digest,
                "draft": draft.as_ref().map(|x| &x.1),
                "intermediate": intermediate.as_ref().map(|x| &x.1),
                "prompt": ids_blake3(&ids),
                "decoding": d,
            });
            crate::device::add_to_preimage(&mut preimage, &g.device);
            let work = GenerateWork {
                gguf: StoreFile::of(model, &gguf),
                draft: draft.as_ref().map(|x| x.0.clone()),
                intermediate: intermediate.as_ref().map(|x| x.0.clone()),
                prompt_ids: ids.clone(),
                decoding: d.clone(),
                device: g.device.clone(),
            };
            specs.push(ctx.item_spec(
                preimage,
                serde_json::to_value(work).expect("work serializes"),
            ));
            rows.push(Row {
                sample: format!("{}-{}", g.dataset, p.id),
                prompt: p.text.clone(),
                prompt_tokens: ids.len(),
                method: d.method(),
                gamma: d.spec.as_ref().map(|s| s.gamma).unwrap_or(0),
                press: d.press.clone(),
            });
        }
    }
    let mut progress = ctx.progress(specs.len() as u64, "generations");
    let items = ctx.items(&specs, &mut progress)?;
    assemble(&rows, &items, &tok, &g.dataset, ctx.out)
}

/// One generation, from its spec alone.
fn compute_item(item: &ItemCtx) -> Result<serde_json::Value> {
    let w: GenerateWork = item.work()?;
    let d = &w.decoding;
    let load =
        |f: &StoreFile| crate::loaded::model(&item.file(f)?, &d.dtype, &d.kv_dtype, &w.device);
    let target = load(&w.gguf)?;
    let draft = w.draft.as_ref().map(load).transpose()?;
    let intermediate = w.intermediate.as_ref().map(load).transpose()?;
    let helpers = Helpers {
        draft: draft.as_deref(),
        intermediate: intermediate.as_deref(),
    };
    let origin = format!("item {}", &item.spec.key()[..16]);
    let out = decode(&target, helpers, &w.prompt_ids, d, &origin)?;
    write_item(&out, item.out)
}

/// The vocabulary digest of a GGUF's tokenizer (drafts must match the target).
fn vocab_digest_of(gguf: &std::path::Path) -> Result<String> {
    let tok = crate::loaded::tokenizer(gguf)?;
    Ok(vocab_digest(tok.vocab_size(), Some(&tok)))
}
