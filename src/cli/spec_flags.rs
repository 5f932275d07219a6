//! `kvlab generate`'s speculative-decoding flags: which draft, gamma and its
//! schedule, a cascade's intermediate. Unspecified settings come from
//! stages/generate.toml; a bad one is one input error naming the flag.

use super::gguf_path::gguf_of;
use super::stage_defaults::or_default;
use kvlab::decode::spec::{
    check_same_vocab, speculative_generate_with, vocab_digest, Draft, GammaSchedule, PressHook,
    Recycle, SpecGeneration, SpecOpts, RECYCLE,
};
use kvlab::decode::warp::Warp;
use kvlab::error::input_err;
use kvlab::model::Model;
use kvlab::model_source::{load_model, resolve_model};
use kvlab::tokenizer::Tokenizer;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, clap::Args)]
pub struct SpecFlags {
    /// Speculative decoding with this draft model (GGUF path or pin; same tokenizer).
    #[arg(long, value_name = "MODEL")]
    pub draft: Option<String>,
    /// Self-speculation: the target's own first N layers draft.
    #[arg(long, value_name = "N")]
    pub self_spec_layers: Option<usize>,
    /// Prompt-lookup drafting, matching n-grams of up to N tokens.
    #[arg(long, value_name = "N")]
    pub prompt_lookup: Option<usize>,
    /// Tokens drafted per round (the start under a dynamic schedule).
    #[arg(long, value_name = "G")]
    pub gamma: Option<usize>,
    /// off, aimd or heuristic.
    #[arg(long, value_name = "SCHEDULE")]
    pub dynamic_gamma: Option<String>,
    /// Cascade: this model verifies the draft's tokens before the target.
    #[arg(long, value_name = "MODEL")]
    pub intermediate: Option<String>,
    /// Rejected-KV recycling: off, draft, target or both.
    #[arg(long, value_name = "MODE")]
    pub recycle: Option<String>,
    /// --recycle target|both: the first target layer keeping rejected K/V.
    #[arg(long, value_name = "L")]
    pub recycle_from_layer: Option<usize>,
}

enum Kind {
    Model(PathBuf),
    SelfSpec(usize),
    Lookup(usize),
}

pub struct SpecPlan {
    kind: Kind,
    intermediate: Option<PathBuf>,
    gamma: GammaSchedule,
    top_k: usize,
    top_p: f64,
    rekv: bool,
    recycle: Recycle,
}

fn bad(flag: &str, msg: impl std::fmt::Display) -> anyhow::Error {
    input_err("command line", flag, msg).into()
}

fn def<T: serde::de::DeserializeOwned>(key: &str) -> anyhow::Result<T> {
    or_default(None, "generate", key)
}

/// A model flag's GGUF: an existing path or a pin.
fn model_flag(flag: &str, m: &str, store: &Path) -> anyhow::Result<PathBuf> {
    let p = resolve_model(m, store).map_err(|e| match e {
        kvlab::Error::Input { .. } => bad(
            flag,
            format!("'{m}' is neither an existing path nor a pinned model name"),
        ),
        e => e.into(),
    })?;
    gguf_of(&p).map_err(|_| bad(flag, format!("'{m}' is not a GGUF file")))
}

impl SpecFlags {
    /// The speculative setup, or None for plain decoding.
    pub fn resolve(&self, store: &Path) -> anyhow::Result<Option<SpecPlan>> {
        let given = [
            self.draft.is_some(),
            self.self_spec_layers.is_some(),
            self.prompt_lookup.is_some(),
        ];
        if given.iter().filter(|&&g| g).count() > 1 {
            return Err(bad(
                "--draft/--self-spec-layers/--prompt-lookup",
                "give at most one draft",
            ));
        }
        let kind = if let Some(m) = &self.draft {
            Kind::Model(model_flag("--draft", m, store)?)
        } else if let Some(n) = self.self_spec_layers {
            if n == 0 {
                return Err(bad("--self-spec-layers", "must be >= 1"));
            }
            Kind::SelfSpec(n)
        } else if let Some(n) = self.prompt_lookup {
            if n == 0 {
                return Err(bad("--prompt-lookup", "the n-gram length must be >= 1"));
            }
            Kind::Lookup(n)
        } else {
            let d: String = def("draft")?;
            match d.as_str() {
                "none" => {
                    for (flag, set) in [
                        ("--gamma", self.gamma.is_some()),
                        ("--dynamic-gamma", self.dynamic_gamma.is_some()),
                        ("--intermediate", self.intermediate.is_some()),
                        ("--recycle", self.recycle.is_some()),
                        ("--recycle-from-layer", self.recycle_from_layer.is_some()),
                    ] {
                        if set {
                            return Err(bad(
                                flag,
                                "needs a draft: --draft, --self-spec-layers or --prompt-lookup",
                            ));
                        }
                    }
                    return Ok(None);
                }
                "self" => Kind::SelfSpec(def::<usize>("self_spec_layers")?),
                "lookup" => Kind::Lookup(def::<usize>("lookup_ngram")?),
                "model" => {
                    return Err(bad(
                        "--draft",
                        "stages/generate.toml sets draft = \"model\": give --draft MODEL",
                    ))
                }
                other => anyhow::bail!(
                    "stages/generate.toml: draft = '{other}' is not none, model, self or lookup"
                ),
            }
        };
        let gamma: usize = or_default(self.gamma, "generate", "gamma")?;
        if gamma == 0 {
            return Err(bad("--gamma", "must be >= 1"));
        }
        let dynamic: String = or_default(self.dynamic_gamma.clone(), "generate", "dynamic_gamma")?;
        let (floor, cap): (usize, usize) = (def("gamma_floor")?, def("gamma_cap")?);
        let schedule = match dynamic.as_str() {
            "off" => GammaSchedule::Fixed(gamma),
            "aimd" => GammaSchedule::Aimd {
                start: gamma,
                floor,
                cap,
            },
            "heuristic" => GammaSchedule::Heuristic { start: gamma, cap },
            other => {
                return Err(bad(
                    "--dynamic-gamma",
                    format!("'{other}' is not one of off, aimd, heuristic"),
                ))
            }
        };
        schedule.check().map_err(|m| bad("--gamma", m))?;
        let intermediate = match &self.intermediate {
            Some(m) => Some(model_flag("--intermediate", m, store)?),
            None => None,
        };
        let recycle: String = or_default(self.recycle.clone(), "generate", "recycle")?;
        let from: usize = or_default(self.recycle_from_layer, "generate", "recycle_from_layer")?;
        Ok(Some(SpecPlan {
            kind,
            intermediate,
            gamma: schedule,
            top_k: def("top_k")?,
            top_p: def("top_p")?,
            rekv: def("rekv")?,
            recycle: Recycle::parse_with(&recycle, from).ok_or_else(|| {
                bad(
                    "--recycle",
                    format!("'{recycle}' is not one of {}", RECYCLE.join(", ")),
                )
            })?,
        }))
    }
}

pub struct SpecRun<'a> {
    pub target: &'a Model,
    pub target_path: &'a Path,
    pub dtype: &'a str,
    pub kv_dtype: &'a str,
    pub device: &'a str,
    pub max_tokens: usize,
    pub temperature: f64,
    pub seed: u64,
    pub stop_ids: Vec<u32>,
}

impl SpecRun<'_> {
    /// Loads a draft-side model, refusing another vocabulary (naming `flag`)
    /// before its weights are read.
    fn load_same_vocab(&self, path: &Path, flag: &str) -> anyhow::Result<Model> {
        let digest = |p: &Path| -> anyhow::Result<String> {
            let tok = Tokenizer::from_gguf_file(p).map_err(|e| bad(flag, e))?;
            Ok(vocab_digest(tok.vocab_size(), Some(&tok)))
        };
        check_same_vocab(
            &digest(self.target_path)?,
            &digest(path)?,
            &path.display().to_string(),
            flag,
        )?;
        Ok(load_model(path, self.dtype, self.kv_dtype, self.device)?)
    }

    pub fn generate(
        &self,
        plan: &SpecPlan,
        prompt: &[u32],
        hook: &mut dyn PressHook,
    ) -> anyhow::Result<(SpecGeneration, serde_json::Value)> {
        let n_layers = self.target.config().n_layers;
        let draft_model = match &plan.kind {
            Kind::Model(p) => Some(self.load_same_vocab(p, "--draft")?),
            _ => None,
        };
        let mid = match &plan.intermediate {
            Some(p) => Some(self.load_same_vocab(p, "--intermediate")?),
            None => None,
        };
        // Self-speculation drafts with the first layers of the model it runs for.
        let drafted_for = mid.as_ref().unwrap_or(self.target).config().n_layers;
        let (base, label) = match &plan.kind {
            Kind::Model(p) => (
                Draft::Model {
                    model: draft_model.as_ref().expect("loaded"),
                    name: p.display().to_string(),
                },
                "model",
            ),
            Kind::SelfSpec(n) => {
                if *n >= drafted_for {
                    return Err(bad(
                        "--self-spec-layers",
                        format!("{n} is not below the model's {drafted_for} layers"),
                    ));
                }
                (Draft::SelfSpec { layers: *n }, "self")
            }
            Kind::Lookup(n) => (Draft::Lookup { ngram: *n }, "lookup"),
        };
        let draft = match &mid {
            Some(m) => Draft::Cascade {
                draft: Box::new(base),
                intermediate: m,
                name: plan
                    .intermediate
                    .as_ref()
                    .expect("set")
                    .display()
                    .to_string(),
            },
            None => base,
        };
        let opts = SpecOpts {
            max_new_tokens: self.max_tokens,
            warp: Warp {
                temperature: self.temperature,
                top_k: plan.top_k,
                top_p: plan.top_p,
            },
            seed: self.seed,
            stop_ids: self.stop_ids.clone(),
            gamma: plan.gamma,
            rekv: plan.rekv,
            recycle: plan.recycle,
        };
        let g = speculative_generate_with(self.target, &draft, prompt, &opts, hook)?;
        let extra = serde_json::json!({
            "draft": label,
            "cascade": mid.is_some(),
            "target_layers": n_layers,
            "rounds": g.rounds.len(),
            "drafted": g.drafted(),
            "accepted": g.accepted(),
            "acceptance_rate": g.acceptance_rate(),
            "mean_accepted_len": g.mean_accepted_len(),
            "draft_ms": g.rounds.iter().map(|r| r.draft_ms).sum::<f64>(),
            "verify_ms": g.rounds.iter().map(|r| r.verify_ms).sum::<f64>(),
            "draft_forwards": g.counters.draft_forwards,
            "draft_steps_saved": g.counters.draft_steps_saved,
            "target_recycled": g.counters.target_recycled,
            "target_forwards": g.counters.target_forwards,
            "total_ms": g.total_ms,
        });
        Ok((g, extra))
    }
}
