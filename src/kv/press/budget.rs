//! How many entries a press keeps, per layer: a ratio or a token count,
//! uniform over layers, a pyramid (PyramidKV's schedule) or given per layer;
//! optionally pooled over a layer's KV heads (AdaKV).

use crate::error::{input_err, Result};

/// What to keep, before the per-layer schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    /// Fraction of entries evicted, in [0, 1) (kvpress's `compression_ratio`).
    Ratio(f64),
    /// Entries kept per layer (and per KV head).
    Tokens(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Uniform,
    /// PyramidKV: more entries in lower layers, the same total.
    Pyramid {
        window: usize,
        beta: usize,
    },
    /// Entries kept in each layer, given.
    PerLayer(Vec<usize>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub amount: Amount,
    pub schedule: Schedule,
    /// AdaKV: choose the layer's `keep * kv_heads` entries across its heads,
    /// each head keeping at least `alpha_safeguard * keep`.
    pub per_head: Option<f64>,
}

impl Budget {
    pub fn ratio(r: f64) -> Self {
        Budget {
            amount: Amount::Ratio(r),
            schedule: Schedule::Uniform,
            per_head: None,
        }
    }

    pub fn tokens(n: usize) -> Self {
        Budget {
            amount: Amount::Tokens(n),
            schedule: Schedule::Uniform,
            per_head: None,
        }
    }

    /// Input errors name `file` and the offending field.
    pub fn validate(&self, file: &str, n_ctx: usize, n_layers: usize) -> Result<()> {
        match self.amount {
            Amount::Ratio(r) if !(0.0..1.0).contains(&r) || r.is_nan() => {
                return Err(input_err(file, "ratio", format!("{r} is outside [0, 1)")))
            }
            Amount::Tokens(0) => {
                return Err(input_err(file, "budget", "must keep at least 1 token"))
            }
            Amount::Tokens(n) if n > n_ctx => {
                return Err(input_err(
                    file,
                    "budget",
                    format!("{n} tokens is larger than the context ({n_ctx} tokens)"),
                ))
            }
            _ => {}
        }
        match &self.schedule {
            Schedule::PerLayer(v) if v.len() != n_layers => {
                return Err(input_err(
                    file,
                    "budget",
                    format!("{} per-layer budgets for {n_layers} layers", v.len()),
                ))
            }
            Schedule::PerLayer(v) if v.iter().any(|&n| n == 0 || n > n_ctx) => {
                return Err(input_err(
                    file,
                    "budget",
                    format!("per-layer budgets must be in 1..={n_ctx}"),
                ))
            }
            Schedule::Pyramid { beta: 0, .. } => {
                return Err(input_err(file, "beta", "must be >= 1"))
            }
            _ => {}
        }
        if let Some(a) = self.per_head {
            if !(0.0..=1.0).contains(&a) {
                return Err(input_err(
                    file,
                    "alpha_safeguard",
                    format!("{a} is outside [0, 1]"),
                ));
            }
        }
        Ok(())
    }

    /// The ratio this budget evicts from `len` entries.
    pub fn ratio_of(&self, len: usize) -> f64 {
        match self.amount {
            Amount::Ratio(r) => r,
            Amount::Tokens(n) => 1.0 - n.min(len) as f64 / len.max(1) as f64,
        }
    }

    /// Entries layer `layer` of `n_layers` keeps out of `len`.
    pub fn keep(&self, layer: usize, n_layers: usize, len: usize) -> usize {
        let r = self.ratio_of(len);
        let n = match &self.schedule {
            Schedule::Uniform => match self.amount {
                Amount::Ratio(r) => n_kept(len, r),
                Amount::Tokens(n) => n,
            },
            Schedule::PerLayer(v) => v[layer],
            Schedule::Pyramid { window, beta } => {
                pyramid_keep(len, r, *window, *beta, layer, n_layers)
            }
        };
        n.clamp(1, len.max(1))
    }
}

/// kvpress's `compute_n_kept`: `max(1, int(len * (1 - ratio)))`.
pub fn n_kept(len: usize, ratio: f64) -> usize {
    ((len as f64 * (1.0 - ratio)) as usize).max(1)
}

/// kvpress `PyramidKVPress.get_layer_budget` (from KVCache-Factory): a
/// linear ramp from `max_num` (layer 0) to `min_num` (last layer) whose mean
/// is the uniform budget; falls back to the uniform budget when the ramp does
/// not fit between the window and the context.
pub fn pyramid_keep(
    len: usize,
    ratio: f64,
    window: usize,
    beta: usize,
    layer: usize,
    n_layers: usize,
) -> usize {
    let (q, w, b) = (len as f64, window as f64, beta as f64);
    let max_cap = w + q * (1.0 - ratio);
    let mut min_num = (max_cap - w) / b;
    let mut max_num = (max_cap - w) * 2.0 - min_num;
    if max_num >= q - w {
        max_num = q - w;
        min_num = (max_cap - w) * 2.0 - max_num;
    }
    if !(q >= max_num && max_num >= min_num && min_num >= w) {
        return ((q * (1.0 - ratio)).round() as usize).max(1);
    }
    let steps = if n_layers > 1 {
        (max_num - min_num) / (n_layers - 1) as f64
    } else {
        0.0
    };
    round_half_even(max_num - layer as f64 * steps) as usize
}

/// Python's `round` (ties to even), which PyramidKV's budgets go through.
fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyramid_matches_kvpress_budgets() {
        // From tests/fixtures/press/pyramidkv_w16_r{50,30}.json (128 tokens, 3 layers).
        let b = |r| {
            (0..3)
                .map(|l| pyramid_keep(128, r, 16, 20, l, 3))
                .collect::<Vec<_>>()
        };
        assert_eq!(b(0.5), vec![112, 64, 16]);
        assert_eq!(b(0.3), vec![112, 90, 67]);
        // Window 64 of 128 at 0.5: the ramp is flat.
        assert_eq!(pyramid_keep(128, 0.5, 64, 20, 2, 3), 64);
    }

    #[test]
    fn n_kept_truncates_like_python() {
        assert_eq!(n_kept(128, 0.3), 89);
        assert_eq!(n_kept(128, 0.5), 64);
        assert_eq!(n_kept(3, 0.9), 1);
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(3.5), 4.0);
    }

    #[test]
    fn validation_names_the_field() {
        let err = |b: Budget| b.validate("p.toml", 100, 3).unwrap_err().to_string();
        assert!(err(Budget::ratio(1.0)).contains("ratio"));
        assert!(err(Budget::ratio(-0.1)).contains("ratio"));
        assert!(err(Budget::tokens(101)).contains("budget"));
        let mut b = Budget::ratio(0.5);
        b.schedule = Schedule::PerLayer(vec![10, 10]);
        assert!(err(b).contains("budget"));
        assert!(Budget::ratio(0.0).validate("p", 100, 3).is_ok());
        assert!(Budget::tokens(100).validate("p", 100, 3).is_ok());
    }
}
