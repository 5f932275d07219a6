//! KV presses (kvpress names): score every (layer, KV head, entry) of a
//! prefilled cache, keep the top of each layer's budget, evict the rest with
//! `KvCache::gather_heads`. A press is a plain enum; each press's scoring
//! is one file. What a press reads besides the cache (observed attention,
//! queries, `W_o`) is declared by `Press::needs` and filled by the engine
//! side (`eval::press_run`), so this module stays below the model.
//!
//! kvzip scores by context reconstruction (see `kvzip.rs` for what differs
//! from kvpress).

mod anchor;
pub mod budget;
mod compress;
mod critical_snapkv;
pub mod expected_attention;
mod hybrid;
mod keydiff;
mod knorm;
mod kvzip;
mod lagkv;
mod no_press;
pub mod observed;
mod observed_attention;
mod pyramidkv;
mod random;
pub mod select;
mod snapkv;
mod streaming_llm;
mod tova;

#[cfg(test)]
mod parity_tests;
#[cfg(test)]
mod rule_tests;

pub use anchor::Rule as AnchorRule;
pub use budget::{Amount, Budget, Schedule};
pub use compress::{apply, evicts, CompressStats};
pub use observed::{LayerCtx, Needs, Observed, Window};

use crate::error::{input_err, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum Press {
    NoPress,
    Random {
        seed: u64,
    },
    StreamingLlm {
        n_sink: usize,
    },
    Knorm,
    SnapKv {
        window: usize,
        kernel: usize,
    },
    Tova,
    ObservedAttention,
    ExpectedAttention(expected_attention::Params),
    PyramidKv {
        window: usize,
        kernel: usize,
        beta: usize,
    },
    CriticalSnapKv {
        window: usize,
        kernel: usize,
        epsilon: f32,
        first_stage_ratio: f64,
    },
    KeyDiff,
    LagKv {
        n_sink: usize,
        lag_size: usize,
    },
    Hybrid {
        n_sink: usize,
        recent: usize,
    },
    Anchor {
        rule: AnchorRule,
        n_sink: usize,
        recent: usize,
    },
    KvZip {
        n_sink: usize,
    },
}

/// Every name `Press::from_name` knows.
pub const NAMES: &[&str] = &[
    "no_press",
    "random",
    "streaming_llm",
    "knorm",
    "snapkv",
    "tova",
    "observed_attention",
    "expected_attention",
    "pyramidkv",
    "critical_snapkv",
    "keydiff",
    "lagkv",
    "hybrid",
    "anchor_a",
    "anchor_b",
    "anchor_c",
    "kvzip",
];

impl Press {
    /// A press by its kvpress name with kvpress's defaults (window 64,
    /// kernel 5, 4 sinks, ...). `file` names the input in errors.
    pub fn from_name(file: &str, name: &str) -> Result<Self> {
        Ok(match name {
            "no_press" => Press::NoPress,
            "random" => Press::Random { seed: 0 },
            "streaming_llm" => Press::StreamingLlm { n_sink: 4 },
            "knorm" => Press::Knorm,
            "snapkv" => Press::SnapKv {
                window: 64,
                kernel: 5,
            },
            "tova" => Press::Tova,
            "observed_attention" => Press::ObservedAttention,
            "expected_attention" => Press::ExpectedAttention(Default::default()),
            "pyramidkv" => Press::PyramidKv {
                window: 64,
                kernel: 5,
                beta: 20,
            },
            "critical_snapkv" => Press::CriticalSnapKv {
                window: 64,
                kernel: 5,
                epsilon: 1e-4,
                first_stage_ratio: 0.5,
            },
            "keydiff" => Press::KeyDiff,
            "lagkv" => Press::LagKv {
                n_sink: 4,
                lag_size: 128,
            },
            "hybrid" => Press::Hybrid {
                n_sink: 4,
                recent: 64,
            },
            "anchor_a" | "anchor_b" | "anchor_c" => Press::Anchor {
                rule: match name {
                    "anchor_a" => AnchorRule::A,
                    "anchor_b" => AnchorRule::B,
                    _ => AnchorRule::C,
                },
                n_sink: 4,
                recent: 64,
            },
            "kvzip" => Press::KvZip { n_sink: 4 },
            _ => {
                return Err(input_err(
                    file,
                    "press",
                    format!("unknown press {name:?} (known: {})", NAMES.join(", ")),
                ))
            }
        })
    }

    /// Sets the observation window of a press that has one; false otherwise.
    pub fn set_window(&mut self, w: usize) -> bool {
        match self {
            Press::SnapKv { window, .. }
            | Press::PyramidKv { window, .. }
            | Press::CriticalSnapKv { window, .. } => {
                *window = w;
                true
            }
            _ => false,
        }
    }

    pub fn needs(&self) -> Needs {
        let attention = match self {
            Press::SnapKv { window, .. }
            | Press::PyramidKv { window, .. }
            | Press::CriticalSnapKv { window, .. } => Some(Window::LastMean(*window)),
            Press::Tova => Some(Window::LastSum(1)),
            Press::ObservedAttention => Some(Window::AllSum),
            Press::Anchor { rule, .. } if *rule != AnchorRule::A => Some(Window::AllSum),
            _ => None,
        };
        Needs {
            attention,
            queries: matches!(self, Press::ExpectedAttention(_)),
            out_proj: matches!(self, Press::CriticalSnapKv { .. }),
            anchors: matches!(self, Press::Anchor { rule, .. } if *rule != AnchorRule::B),
            reconstruction: matches!(self, Press::KvZip { .. }),
        }
    }

    /// The per-layer schedule this press imposes (PyramidKV), if any.
    pub fn schedule(&self) -> Option<Schedule> {
        match self {
            Press::PyramidKv { window, beta, .. } => Some(pyramidkv::schedule(*window, *beta)),
            _ => None,
        }
    }

    /// Input errors for a context of `n_ctx` tokens: windows and sinks must
    /// leave something to score.
    pub fn validate(&self, file: &str, n_ctx: usize) -> Result<()> {
        let check = |field: &str, n: usize| {
            if n >= n_ctx {
                Err(input_err(
                    file,
                    field,
                    format!("{n} is not smaller than the context ({n_ctx} tokens)"),
                ))
            } else {
                Ok(())
            }
        };
        match self {
            Press::SnapKv { window, kernel, .. }
            | Press::PyramidKv { window, kernel, .. }
            | Press::CriticalSnapKv { window, kernel, .. } => {
                check("window", *window)?;
                if *kernel == 0 || kernel % 2 == 0 {
                    return Err(input_err(file, "kernel", "must be odd"));
                }
            }
            Press::StreamingLlm { n_sink } | Press::LagKv { n_sink, .. } => {
                check("n_sink", *n_sink)?
            }
            Press::ExpectedAttention(p) => check("n_sink", p.n_sink)?,
            Press::Hybrid { n_sink, .. }
            | Press::Anchor { n_sink, .. }
            | Press::KvZip { n_sink } => check("n_sink", *n_sink)?,
            _ => {}
        }
        if let Press::LagKv { lag_size: 0, .. } = self {
            return Err(input_err(file, "lag_size", "must be >= 1"));
        }
        Ok(())
    }

    /// Scores `[kv_heads][len]` of one layer; higher is kept.
    pub fn score(&self, ctx: &LayerCtx) -> Result<Vec<Vec<f32>>> {
        match self {
            Press::NoPress => no_press::score(ctx),
            Press::Random { seed } => random::score(ctx, *seed),
            Press::StreamingLlm { n_sink } => streaming_llm::score(ctx, *n_sink),
            Press::Knorm => knorm::score(ctx),
            Press::SnapKv { window, kernel } | Press::PyramidKv { window, kernel, .. } => {
                snapkv::score(ctx, *window, *kernel)
            }
            Press::Tova => tova::score(ctx),
            Press::ObservedAttention => observed_attention::score(ctx),
            Press::ExpectedAttention(p) => expected_attention::score(ctx, p),
            Press::CriticalSnapKv {
                window,
                kernel,
                epsilon,
                first_stage_ratio,
            } => critical_snapkv::score(ctx, *window, *kernel, *epsilon, *first_stage_ratio),
            Press::KeyDiff => keydiff::score(ctx),
            Press::LagKv { n_sink, lag_size } => lagkv::score(ctx, *n_sink, *lag_size),
            Press::Hybrid { n_sink, recent } => hybrid::score(ctx, *n_sink, *recent),
            Press::Anchor {
                rule,
                n_sink,
                recent,
            } => anchor::score(ctx, *rule, *n_sink, *recent),
            Press::KvZip { n_sink } => kvzip::score(ctx, *n_sink),
        }
    }
}
