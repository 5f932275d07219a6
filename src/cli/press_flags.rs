//! `--press NAME --ratio R [--press-every N]` of `kvlab perplexity` and
//! `kvlab generate`: compress the KV cache after prefill (perplexity: of each
//! window's first half, see `eval::compressed_perplexity`). `--press-every`
//! defaults to stages/press_eval.toml's `press_every`; a bad value is one
//! input error naming the flag (exit 2).

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
    /// perplexity: re-compress every N scored tokens (0 = only after prefill).
    #[arg(long, value_name = "N")]
    pub press_every: Option<usize>,
}

pub struct PressPlan {
    pub name: String,
    pub press: Press,
    pub budget: Budget,
    pub ratio: f64,
    pub press_every: Option<usize>,
}

fn bad(flag: &str, msg: impl std::fmt::Display) -> anyhow::Error {
    input_err("command line", flag, msg).into()
}

impl PressFlags {
    /// The press to apply, or None without `--press`.
    /// `default_every`: stages/press_eval.toml's `press_every` (the caller reads it).
    pub fn resolve(&self, default_every: usize) -> anyhow::Result<Option<PressPlan>> {
        let Some(name) = &self.press else {
            if self.ratio.is_some() || self.press_every.is_some() {
                return Err(bad("--press", "--ratio / --press-every need --press NAME"));
            }
            return Ok(None);
        };
        let press = Press::from_name("command line", name).map_err(|_| {
            bad(
                "--press",
                format!("unknown press {name:?} (known: {})", NAMES.join(", ")),
            )
        })?;
        let ratio = self
            .ratio
            .ok_or_else(|| bad("--ratio", "--press needs --ratio R in [0, 1)"))?;
        if !(0.0..1.0).contains(&ratio) {
            return Err(bad("--ratio", format!("{ratio} is outside [0, 1)")));
        }
        let every = self.press_every.unwrap_or(default_every);
        Ok(Some(PressPlan {
            name: name.clone(),
            press,
            budget: Budget::ratio(ratio),
            ratio,
            press_every: (every > 0).then_some(every),
        }))
    }
}
