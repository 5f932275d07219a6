//! A decoding method as data: plain or speculative, with every setting that
//! decides its output. Stages hash it into their items' keys and the CLI
//! builds it from flags; both run it through [`decode`], so a setting means
//! the same thing wherever it is given.

use super::cache_press::{DecodePress, PressRunner};
use super::generate::{generate_with, GenerateOpts};
use super::spec::{
    speculative_generate_with, Draft, GammaSchedule, NoPress, PressHook, Recycle, RekvEvent,
    SpecGeneration, SpecOpts, RECYCLE,
};
use super::warp::Warp;
use crate::error::{input_err, Result};
use crate::model::Model;
use serde::{Deserialize, Serialize};

/// The speculative half of a method (absent for plain decoding).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Speculation {
    /// model | self | lookup
    pub draft: String,
    pub gamma: usize,
    /// off | aimd | heuristic
    pub dynamic_gamma: String,
    pub gamma_floor: usize,
    pub gamma_cap: usize,
    pub self_spec_layers: usize,
    pub lookup_ngram: usize,
    /// Cascade: the draft's proposals go through an intermediate model first.
    pub intermediate: bool,
    pub rekv: bool,
    /// off | draft | target | both
    pub recycle: String,
    /// recycle = target | both: the first target layer that keeps rejected
    /// K/V (unhashed while 0, so older items keep their keys).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub recycle_from_layer: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

pub const DRAFTS: &[&str] = &["none", "model", "self", "lookup"];
pub const SCHEDULES: &[&str] = &["off", "aimd", "heuristic"];

impl Speculation {
    /// The gamma schedule, or (field, message) naming what is wrong.
    pub fn schedule(&self) -> std::result::Result<GammaSchedule, (&'static str, String)> {
        let s = match self.dynamic_gamma.as_str() {
            "off" => GammaSchedule::Fixed(self.gamma),
            "aimd" => GammaSchedule::Aimd {
                start: self.gamma,
                floor: self.gamma_floor,
                cap: self.gamma_cap,
            },
            "heuristic" => GammaSchedule::Heuristic {
                start: self.gamma,
                cap: self.gamma_cap,
            },
            other => {
                return Err((
                    "dynamic_gamma",
                    format!("'{other}' is not one of {}", SCHEDULES.join(", ")),
                ))
            }
        };
        s.check().map_err(|m| ("gamma", m))?;
        Ok(s)
    }

    /// Every setting checked that can be without a model; (field, message).
    pub fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        if !DRAFTS[1..].contains(&self.draft.as_str()) {
            return Err((
                "draft",
                format!("'{}' is not one of {}", self.draft, DRAFTS.join(", ")),
            ));
        }
        self.schedule()?;
        if self.draft == "self" && self.self_spec_layers == 0 {
            return Err(("self_spec_layers", "must be >= 1".into()));
        }
        if self.draft == "lookup" && self.lookup_ngram == 0 {
            return Err(("lookup_ngram", "the n-gram length must be >= 1".into()));
        }
        if Recycle::parse_with(&self.recycle, self.recycle_from_layer).is_none() {
            return Err((
                "recycle",
                format!("'{}' is not one of {}", self.recycle, RECYCLE.join(", ")),
            ));
        }
        Ok(())
    }

    /// A short name for tables: `self8/g4`, `lookup3/aimd4`, `model+mid/heuristic4`.
    pub fn label(&self) -> String {
        let draft = match self.draft.as_str() {
            "self" => format!("self{}", self.self_spec_layers),
            "lookup" => format!("lookup{}", self.lookup_ngram),
            d => d.to_string(),
        };
        let mid = if self.intermediate { "+mid" } else { "" };
        let gamma = match self.dynamic_gamma.as_str() {
            "off" => format!("g{}", self.gamma),
            d => format!("{d}{}", self.gamma),
        };
        let recycle = match self.recycle.as_str() {
            "off" => String::new(),
            "draft" => "+recycle".into(),
            m => format!("+recycle_{m}{}", self.recycle_from_layer),
        };
        format!("{draft}{mid}/{gamma}{recycle}")
    }
}

/// Everything that decides a generation besides the model and the prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decoding {
    pub max_new_tokens: usize,
    pub temperature: f64,
    pub top_k: usize,
    pub top_p: f64,
    pub seed: u64,
    pub stop_ids: Vec<u32>,
    pub dtype: String,
    pub kv_dtype: String,
    pub spec: Option<Speculation>,
    /// A KV press during decoding; absent (and unhashed) when it evicts
    /// nothing, so such a method shares the plain method's items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub press: Option<DecodePress>,
}

impl Decoding {
    pub fn method(&self) -> String {
        let base = match &self.spec {
            Some(s) => s.label(),
            None if self.temperature > 0.0 => "sample".into(),
            None => "greedy".into(),
        };
        match &self.press {
            Some(p) => format!("{base}+{}", p.label()),
            None => base,
        }
    }
}

/// One speculative round as a table row (deterministic: no timings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Round {
    pub gamma: usize,
    pub drafted: usize,
    pub accepted: usize,
    pub emitted: usize,
}

/// What a generation produced, plain or speculative.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub new_ids: Vec<u32>,
    pub stop_reason: String,
    pub ttft_ms: f64,
    pub tpot_ms: f64,
    /// Per step (plain: per token; speculative: per round), step 0 the prefill.
    pub step_ms: Vec<f64>,
    /// Speculative rounds (empty for plain decoding).
    pub rounds: Vec<Round>,
    pub rekv: Vec<RekvEvent>,
    /// Draft forwards saved by recycling.
    pub draft_steps_saved: usize,
    /// Rejections whose K/V the target kept (target recycling).
    pub target_recycled: usize,
    /// Bytes of KV cache held at the end: the target's and the draft's own.
    pub kv_bytes: usize,
    pub draft_kv_bytes: usize,
}

/// The models a method may need besides the target.
#[derive(Default, Clone, Copy)]
pub struct Helpers<'m> {
    pub draft: Option<&'m Model>,
    pub intermediate: Option<&'m Model>,
}

/// Generate with `d`'s method. Errors name the parameter (`origin` is the
/// file or stage the settings came from).
pub fn decode(
    target: &Model,
    helpers: Helpers,
    prompt: &[u32],
    d: &Decoding,
    origin: &str,
) -> Result<Decoded> {
    let mut runner = match &d.press {
        Some(p) => PressRunner::new(p, origin)?,
        None => None,
    };
    let mut no_press = NoPress;
    let hook: &mut dyn PressHook = match runner.as_mut() {
        Some(r) => r,
        None => &mut no_press,
    };
    let Some(s) = &d.spec else {
        if d.press.as_ref().is_some_and(|p| p.on_draft()) {
            return Err(input_err(
                origin,
                "press_on",
                "plain decoding has no draft: press_on = target",
            ));
        }
        if d.top_k != 0 || d.top_p != 1.0 {
            return Err(input_err(
                origin,
                "top_k",
                "top_k / top_p apply to speculative decoding only (plain sampling uses temperature)",
            ));
        }
        let g = generate_with(
            target,
            prompt,
            &GenerateOpts {
                max_new_tokens: d.max_new_tokens,
                temperature: d.temperature,
                seed: d.seed,
                stop_ids: d.stop_ids.clone(),
            },
            hook,
        )?;
        return Ok(Decoded {
            new_ids: g.new_ids,
            stop_reason: g.stop_reason,
            ttft_ms: g.ttft_ms,
            tpot_ms: g.tpot_ms,
            step_ms: g.step_ms,
            rounds: vec![],
            rekv: vec![],
            draft_steps_saved: 0,
            target_recycled: 0,
            kv_bytes: g.kv_bytes,
            draft_kv_bytes: 0,
        });
    };
    let field = |(f, m): (&'static str, String)| input_err(origin, f, m);
    s.check().map_err(field)?;
    let schedule = s.schedule().map_err(field)?;
    let verified_by = helpers.intermediate.unwrap_or(target);
    let base = match s.draft.as_str() {
        "model" => Draft::Model {
            model: helpers.draft.ok_or_else(|| {
                input_err(
                    origin,
                    "inputs.draft",
                    "draft = \"model\" needs a draft model",
                )
            })?,
            name: "draft".into(),
        },
        "self" => {
            let n = verified_by.config().n_layers;
            if s.self_spec_layers >= n {
                return Err(input_err(
                    origin,
                    "self_spec_layers",
                    format!("{} is not below the model's {n} layers", s.self_spec_layers),
                ));
            }
            Draft::SelfSpec {
                layers: s.self_spec_layers,
            }
        }
        _ => Draft::Lookup {
            ngram: s.lookup_ngram,
        },
    };
    let draft = match (s.intermediate, helpers.intermediate) {
        (true, Some(m)) => Draft::Cascade {
            draft: Box::new(base),
            intermediate: m,
            name: "intermediate".into(),
        },
        (true, None) => {
            return Err(input_err(
                origin,
                "inputs.intermediate",
                "a cascade needs an intermediate model",
            ))
        }
        (false, _) => base,
    };
    let opts = SpecOpts {
        max_new_tokens: d.max_new_tokens,
        warp: Warp {
            temperature: d.temperature,
            top_k: d.top_k,
            top_p: d.top_p,
        },
        seed: d.seed,
        stop_ids: d.stop_ids.clone(),
        gamma: schedule,
        rekv: s.rekv,
        recycle: Recycle::parse_with(&s.recycle, s.recycle_from_layer).expect("checked"),
    };
    if d.press.as_ref().is_some_and(|p| p.on_draft())
        && !matches!(draft, Draft::Model { .. } | Draft::Cascade { .. })
    {
        return Err(input_err(
            origin,
            "press_on",
            "the draft has no cache of its own (self-speculation shares the target's, \
             prompt lookup has none): press_on = target",
        ));
    }
    Ok(from_spec(speculative_generate_with(
        target, &draft, prompt, &opts, hook,
    )?))
}

fn from_spec(g: SpecGeneration) -> Decoded {
    let mut step_ms = vec![g.ttft_ms];
    step_ms.extend(g.rounds.iter().map(|r| r.round_ms));
    Decoded {
        stop_reason: g.stop_reason.clone(),
        ttft_ms: g.ttft_ms,
        tpot_ms: g.tpot_ms,
        step_ms,
        rounds: g
            .rounds
            .iter()
            .map(|r| Round {
                gamma: r.gamma,
                drafted: r.drafted,
                accepted: r.accepted,
                emitted: r.emitted,
            })
            .collect(),
        draft_steps_saved: g.counters.draft_steps_saved,
        target_recycled: g.counters.target_recycled,
        kv_bytes: g.kv_bytes,
        draft_kv_bytes: g.draft_kv_bytes,
        rekv: g.rekv,
        new_ids: g.new_ids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Speculation {
        Speculation {
            draft: "self".into(),
            gamma: 4,
            dynamic_gamma: "off".into(),
            gamma_floor: 4,
            gamma_cap: 16,
            self_spec_layers: 8,
            lookup_ngram: 3,
            intermediate: false,
            rekv: false,
            recycle: "off".into(),
            recycle_from_layer: 0,
        }
    }

    #[test]
    fn settings_are_checked_and_named() {
        assert!(spec().check().is_ok());
        assert_eq!(spec().label(), "self8/g4");
        let mut s = spec();
        s.gamma = 0;
        assert_eq!(s.check().unwrap_err().0, "gamma");
        let mut s = spec();
        s.dynamic_gamma = "aimd".into();
        s.gamma = 2; // below the floor
        assert_eq!(s.check().unwrap_err().0, "gamma");
        s.gamma = 6;
        assert_eq!(s.label(), "self8/aimd6");
        let mut s = spec();
        s.draft = "lookup".into();
        s.lookup_ngram = 0;
        assert_eq!(s.check().unwrap_err().0, "lookup_ngram");
        let mut s = spec();
        s.recycle = "bogus".into();
        assert_eq!(s.check().unwrap_err().0, "recycle");
        let mut s = spec();
        s.recycle = "target".into();
        s.recycle_from_layer = 20;
        assert_eq!(s.label(), "self8/g4+recycle_target20");
        let mut s = spec();
        s.draft = "none".into();
        assert_eq!(s.check().unwrap_err().0, "draft");
    }
}
