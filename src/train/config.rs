//! LEGO training settings (seed 001's `ExperimentConfig` as defaults) and
//! their validation: every bad value is an input error naming its field.

use crate::error::{input_err, Result};

/// How the training text is tokenized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tokenization {
    /// Bytes 0..256 plus `SPECIALS` (BOS 256, EOS 257): vocab 258.
    Bytes,
    /// SmolLM2's tokenizer read from this GGUF file (vocab 49152).
    Gguf(std::path::PathBuf),
}

/// Which per-token confidence mining ranks by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MiningScore {
    /// Max softmax probability of the shallow head: the same quantity the
    /// two-stage router thresholds at inference (where the true token is
    /// unknown), so phase 2 trains exactly the tokens routing sends deep.
    #[default]
    MaxProb,
    /// Probability of the true next token (hard = the shallow model is wrong).
    TrueProb,
}

#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub seq_len: usize,
    pub dim: usize,
    pub n_heads: usize,
    pub intermediate_size: usize,
    pub phase1_layers: usize,
    pub phase2_layers: usize,
    /// Training windows of `seq_len + 1` tokens drawn for phase 1.
    pub phase1_samples: usize,
    /// Fraction of training tokens mined as hard, in (0, 1).
    pub hard_example_ratio: f64,
    pub mining_score: MiningScore,
    /// Phase 2 trains only the added layers (embedding, shallow layers,
    /// final norm and LM head stay as phase 1 left them).
    pub freeze_shallow: bool,
    pub batch_size: usize,
    pub phase1_epochs: usize,
    pub phase2_epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    /// Fraction of the text (its tail) held out for validation, in (0, 1).
    pub val_fraction: f64,
    /// Validation windows evaluated (each `seq_len + 1` tokens, disjoint).
    pub max_val_windows: usize,
    pub seed: u64,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    pub tokenization: Tokenization,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            seq_len: 32,
            dim: 64,
            n_heads: 4,
            intermediate_size: 256,
            phase1_layers: 2,
            phase2_layers: 4,
            phase1_samples: 10_000,
            hard_example_ratio: 0.5,
            mining_score: MiningScore::MaxProb,
            freeze_shallow: true,
            batch_size: 32,
            phase1_epochs: 3,
            phase2_epochs: 3,
            lr: 3e-3,
            weight_decay: 0.01,
            val_fraction: 0.1,
            max_val_windows: 400,
            seed: 0,
            rope_theta: 10_000.0,
            rms_norm_eps: 1e-5,
            tokenization: Tokenization::Bytes,
        }
    }
}

/// The name errors are reported under.
pub const CONFIG_FILE: &str = "train config";

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |f: &str, m: String| Err(input_err(CONFIG_FILE, f, m));
        for (f, v) in [
            ("seq_len", self.seq_len),
            ("dim", self.dim),
            ("n_heads", self.n_heads),
            ("intermediate_size", self.intermediate_size),
            ("phase1_layers", self.phase1_layers),
            ("phase1_samples", self.phase1_samples),
            ("batch_size", self.batch_size),
            ("max_val_windows", self.max_val_windows),
        ] {
            if v == 0 {
                return bad(f, "must be positive".into());
            }
        }
        if !(self.hard_example_ratio > 0.0 && self.hard_example_ratio < 1.0) {
            return bad(
                "hard_example_ratio",
                format!("{} is outside (0, 1)", self.hard_example_ratio),
            );
        }
        if self.phase2_layers <= self.phase1_layers {
            return bad(
                "phase2_layers",
                format!(
                    "{} must exceed phase1_layers {}",
                    self.phase2_layers, self.phase1_layers
                ),
            );
        }
        if !self.dim.is_multiple_of(self.n_heads) || !(self.dim / self.n_heads).is_multiple_of(2) {
            return bad(
                "n_heads",
                format!(
                    "dim {} / {} heads must be an even head_dim",
                    self.dim, self.n_heads
                ),
            );
        }
        if !(self.val_fraction > 0.0 && self.val_fraction < 1.0) {
            return bad(
                "val_fraction",
                format!("{} is outside (0, 1)", self.val_fraction),
            );
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", format!("{} must be a positive number", self.lr));
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.dim / self.n_heads
    }
}

/// A routing threshold must be a probability.
pub fn check_threshold(field: &str, t: f64) -> Result<()> {
    if (0.0..=1.0).contains(&t) {
        Ok(())
    } else {
        Err(input_err(
            CONFIG_FILE,
            field,
            format!("{t} is outside [0, 1]"),
        ))
    }
}

/// A target fraction for calibration must lie strictly inside (0, 1).
pub fn check_fraction(field: &str, f: f64) -> Result<()> {
    if f > 0.0 && f < 1.0 {
        Ok(())
    } else {
        Err(input_err(
            CONFIG_FILE,
            field,
            format!("{f} is outside (0, 1)"),
        ))
    }
}
