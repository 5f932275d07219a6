//! A KV press during generation, plain or speculative (seed 004's SpecDec +
//! KVPress; kvpress's DecodingPress). The first time a cache holds entries it
//! is compressed to `1 - ratio` of them (the target's: the prompt, right
//! after prefill; a draft model's: the prompt and its first drafts, as it is
//! fed lazily), and with `every = N` it is re-compressed to that size per
//! layer whenever N more positions were added since. It runs as the
//! speculative decoder's hook (`spec::PressHook`, between rounds) and
//! between plain decoding steps.
//!
//! Only presses that read nothing but the cache run here: the decoding loop
//! observes no prefill attention. Ratio 0 (or `no_press`) is no press at all,
//! so greedy output then equals plain decoding exactly.

use crate::decode::spec::PressHook;
use crate::error::{input_err, Result};
use crate::kv::press::{apply, Budget, Needs, Observed, Press, Schedule, NAMES};
use crate::kv::KvCache;
use serde::{Deserialize, Serialize};

/// Which caches a press compresses.
pub const PRESS_ON: &[&str] = &["target", "draft", "both"];

/// The press settings of a generation (hashed with the method).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecodePress {
    /// kvpress name; a press that reads only the cache.
    pub name: String,
    /// Fraction of entries evicted, in [0, 1).
    pub ratio: f64,
    /// target | draft | both
    pub on: String,
    /// Re-compress after every N new positions (0 = once).
    pub every: usize,
}

/// The presses that can run during decoding (they read only the cache).
pub fn cache_only_presses() -> Vec<&'static str> {
    NAMES
        .iter()
        .copied()
        .filter(|n| Press::from_name("", n).is_ok_and(|p| p.needs() == Needs::default()))
        .collect()
}

impl DecodePress {
    /// Every setting checked that can be without a model: the press, or
    /// (field, message) naming the generate stage's parameter.
    pub fn check(&self) -> std::result::Result<Press, (&'static str, String)> {
        let press = Press::from_name("", &self.name).map_err(|_| {
            (
                "press",
                format!(
                    "unknown press {:?} (known: {})",
                    self.name,
                    NAMES.join(", ")
                ),
            )
        })?;
        if press.needs() != Needs::default() {
            return Err((
                "press",
                format!(
                    "{} reads prefill attention or queries, which decoding does not observe; \
                     during generation use one of {}",
                    self.name,
                    cache_only_presses().join(", ")
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.ratio) {
            return Err(("press_ratio", format!("{} is outside [0, 1)", self.ratio)));
        }
        if !PRESS_ON.contains(&self.on.as_str()) {
            return Err((
                "press_on",
                format!("'{}' is not one of {}", self.on, PRESS_ON.join(", ")),
            ));
        }
        Ok(press)
    }

    /// Evicts nothing, ever: the generation is plain.
    pub fn is_noop(&self) -> bool {
        self.ratio == 0.0 || self.name == "no_press"
    }

    pub fn on_target(&self) -> bool {
        self.on != "draft"
    }

    pub fn on_draft(&self) -> bool {
        self.on != "target"
    }

    /// A short name for tables: `knorm0.5@target`, `knorm0.5@both/e16`.
    pub fn label(&self) -> String {
        let every = if self.every > 0 {
            format!("/e{}", self.every)
        } else {
            String::new()
        };
        format!("{}{}@{}{every}", self.name, self.ratio, self.on)
    }
}

/// One cache's compression state: its per-layer budget once compressed,
/// and the next position at the last compression.
#[derive(Default)]
struct Held {
    kept: Option<Vec<usize>>,
    mark: i64,
}

/// The hook that applies a `DecodePress`.
pub struct PressRunner {
    press: Press,
    ratio: f64,
    every: usize,
    on_target: bool,
    on_draft: bool,
    target: Held,
    draft: Held,
    /// Names the settings' origin in errors.
    origin: String,
    /// Compressions applied (all caches).
    pub compressions: usize,
}

impl PressRunner {
    /// None when the press evicts nothing (ratio 0, no_press).
    pub fn new(p: &DecodePress, origin: &str) -> Result<Option<Self>> {
        let press = p.check().map_err(|(f, m)| input_err(origin, f, m))?;
        if p.is_noop() {
            return Ok(None);
        }
        Ok(Some(PressRunner {
            press,
            ratio: p.ratio,
            every: p.every,
            on_target: p.on_target(),
            on_draft: p.on_draft(),
            target: Held::default(),
            draft: Held::default(),
            origin: origin.to_string(),
            compressions: 0,
        }))
    }

    fn step(&mut self, which: Which, cache: &mut KvCache) -> Result<()> {
        let held = match which {
            Which::Target => &mut self.target,
            Which::Draft => &mut self.draft,
        };
        let len = cache.len(0);
        if len == 0 {
            return Ok(()); // a draft model not fed yet
        }
        let next = cache.next_position();
        let budget = match &held.kept {
            None => {
                let b = Budget::ratio(self.ratio);
                b.validate(&self.origin, len, cache.n_layers())?;
                self.press.validate(&self.origin, len)?;
                b
            }
            Some(k) if self.every > 0 && next - held.mark >= self.every as i64 => Budget {
                schedule: Schedule::PerLayer(k.clone()),
                ..Budget::ratio(self.ratio)
            },
            Some(_) => return Ok(()),
        };
        let st = apply(cache, &self.press, &budget, &Observed::default())?;
        if held.kept.is_none() {
            held.kept = Some(st.kept);
        }
        held.mark = next;
        self.compressions += 1;
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Which {
    Target,
    Draft,
}

impl PressHook for PressRunner {
    fn between_rounds(
        &mut self,
        _round: usize,
        target: &mut KvCache,
        draft: Option<&mut KvCache>,
    ) -> Result<()> {
        if self.on_target {
            self.step(Which::Target, target)?;
        }
        if self.on_draft {
            match draft {
                Some(d) => self.step(Which::Draft, d)?,
                None => {
                    return Err(input_err(
                        &self.origin,
                        "press_on",
                        "the draft has no cache of its own (self-speculation shares the \
                         target's, prompt lookup has none): press_on = target",
                    ))
                }
            }
        }
        Ok(())
    }
}
