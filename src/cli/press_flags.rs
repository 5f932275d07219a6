//! `--press NAME --ratio R [--press-every N]` of `kvlab perplexity` and
//! `kvlab generate`: compress the KV cache after prefill (perplexity: of each
//! window's first half, see `eval::compressed_perplexity`). `--press-budget N`
//! keeps N entries per layer instead of a ratio; `--press-window N` sets the
//! observation window of snapkv / pyramidkv / critical_snapkv (a name apart
//! from perplexity's `--window`, so an error names the right flag).
//! `--press-every` defaults to the stage's `press_every` (the caller reads
//! it); a bad value is one input error naming the flag (exit 2).

use kvlab::error::input_err;
use kvlab::kv::press::{Budget, Press, NAMES};

#[derive(Debug, Clone, clap::Args)]
pub struct PressFlags {
    /// Compress the cache after prefill with this press (kvpress name).
    #[arg(long, value_name = "NAME")]
    pub press: Option<String>,
    /// Fraction of the cache's entries evicted, in [0, 1) (needs --press).
    #[arg(long, value_name = "R")]
    pub ratio: Option<f64>,
    /// Instead of --ratio: entries kept per layer (<= the compressed context).
    #[arg(long, value_name = "N")]
    pub press_budget: Option<usize>,
    /// Observation window of snapkv, pyramidkv, critical_snapkv (default 64).
    #[arg(long, value_name = "N")]
    pub press_window: Option<usize>,
    /// Re-compress every N scored (perplexity) or generated tokens (0 = only after prefill).
    #[arg(long, value_name = "N")]
    pub press_every: Option<usize>,
    /// generate: which cache to compress: target, draft or both (a draft model's own).
    #[arg(long, value_name = "WHICH")]
    pub press_on: Option<String>,
}

pub struct PressPlan {
    pub name: String,
    pub press: Press,
    pub budget: Budget,
    /// None with --press-budget.
    pub ratio: Option<f64>,
    pub budget_tokens: Option<usize>,
    pub press_every: Option<usize>,
    pub press_on: Option<String>,
}

fn bad(flag: &str, msg: impl std::fmt::Display) -> anyhow::Error {
    input_err("command line", flag, msg).into()
}

/// The flag behind a press setting named in a library input error.
pub fn flag_of(field: &str) -> String {
    match field {
        "ratio" | "press_ratio" => "--ratio".into(),
        "window" => "--press-window".into(),
        "budget" => "--press-budget".into(),
        // Press defaults (sinks, kernel): only --press chooses them.
        "n_sink" | "kernel" | "lag_size" | "press" => "--press".into(),
        f if f.starts_with("--") => f.to_string(),
        f => format!("--{}", f.replace('_', "-")),
    }
}

/// A library input error re-issued naming the command-line flag.
pub fn as_flag_error(e: kvlab::Error) -> anyhow::Error {
    match e {
        kvlab::Error::Input { field, msg, .. } => bad(&flag_of(&field), msg),
        e => e.into(),
    }
}

impl PressFlags {
    /// The press to apply, or None without `--press`.
    /// `default_every`: the stage's `press_every` (the caller reads it).
    pub fn resolve(&self, default_every: usize) -> anyhow::Result<Option<PressPlan>> {
        let Some(name) = &self.press else {
            for (flag, set) in [
                ("--ratio", self.ratio.is_some()),
                ("--press-budget", self.press_budget.is_some()),
                ("--press-window", self.press_window.is_some()),
                ("--press-every", self.press_every.is_some()),
                ("--press-on", self.press_on.is_some()),
            ] {
                if set {
                    return Err(bad(flag, "needs --press NAME"));
                }
            }
            return Ok(None);
        };
        let mut press = Press::from_name("command line", name).map_err(|_| {
            bad(
                "--press",
                format!("unknown press {name:?} (known: {})", NAMES.join(", ")),
            )
        })?;
        if let Some(w) = self.press_window {
            if !press.set_window(w) {
                return Err(bad(
                    "--press-window",
                    format!("{name} has no observation window"),
                ));
            }
        }
        let budget = match (self.ratio, self.press_budget) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "--press-budget",
                    "give --ratio or --press-budget, not both",
                ))
            }
            (None, None) => {
                return Err(bad("--ratio", "--press needs --ratio R in [0, 1)"));
            }
            (Some(r), None) if !(0.0..1.0).contains(&r) => {
                return Err(bad("--ratio", format!("{r} is outside [0, 1)")));
            }
            (Some(r), None) => Budget::ratio(r),
            (None, Some(0)) => return Err(bad("--press-budget", "must keep at least 1 token")),
            (None, Some(n)) => Budget::tokens(n),
        };
        let every = self.press_every.unwrap_or(default_every);
        Ok(Some(PressPlan {
            name: name.clone(),
            press,
            budget,
            ratio: self.ratio,
            budget_tokens: self.press_budget,
            press_every: (every > 0).then_some(every),
            press_on: self.press_on.clone(),
        }))
    }
}
