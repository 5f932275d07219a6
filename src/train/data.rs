//! Training text → token ids → fixed windows. Byte-level by default (vocab
//! 256 + BOS/EOS), or SmolLM2's tokenizer; the text's tail is the held-out
//! validation split (never sampled for training).

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};

use super::config::{Tokenization, TrainConfig, CONFIG_FILE};
use crate::error::{input_err, IoContext, Result};
use crate::tokenizer::Tokenizer;

pub const BYTE_BOS: u32 = 256;
pub const BYTE_EOS: u32 = 257;
pub const BYTE_VOCAB: usize = 258;

#[derive(Debug, Clone)]
pub struct Corpus {
    pub train: Vec<u32>,
    pub val: Vec<u32>,
    pub vocab_size: usize,
}

/// The pinned alice29 text: `$KVLAB_ALICE_TXT` (see `kvlab fetch alice29`).
pub fn alice_path() -> Result<PathBuf> {
    std::env::var_os("KVLAB_ALICE_TXT")
        .map(PathBuf::from)
        .ok_or_else(|| {
            input_err(
                "environment",
                "KVLAB_ALICE_TXT",
                "unset (run `kvlab fetch alice29`)",
            )
        })
}

pub fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).ctx(path.display())
}

/// Token ids of `text` under `tok`.
pub fn tokenize(text: &str, tok: &Tokenization) -> Result<(Vec<u32>, usize)> {
    match tok {
        Tokenization::Bytes => Ok((text.bytes().map(u32::from).collect(), BYTE_VOCAB)),
        Tokenization::Gguf(path) => {
            let t = Tokenizer::from_gguf_file(path)?;
            Ok((t.encode(text)?, t.vocab_size()))
        }
    }
}

impl Corpus {
    pub fn from_text(text: &str, cfg: &TrainConfig) -> Result<Self> {
        let (ids, vocab_size) = tokenize(text, &cfg.tokenization)?;
        Self::from_ids(ids, vocab_size, cfg)
    }

    pub fn from_ids(ids: Vec<u32>, vocab_size: usize, cfg: &TrainConfig) -> Result<Self> {
        let n_val = ((ids.len() as f64) * cfg.val_fraction).round() as usize;
        let split = ids.len() - n_val;
        let (train, val) = (ids[..split].to_vec(), ids[split..].to_vec());
        let w = cfg.seq_len + 1;
        if train.len() < w {
            return Err(input_err(
                CONFIG_FILE,
                "training set",
                format!(
                    "{} training tokens, fewer than one window of {w}",
                    train.len()
                ),
            ));
        }
        if val.len() < w {
            return Err(input_err(
                CONFIG_FILE,
                "val_fraction",
                format!(
                    "{} validation tokens, fewer than one window of {w}",
                    val.len()
                ),
            ));
        }
        Ok(Corpus {
            train,
            val,
            vocab_size,
        })
    }

    /// `n` training windows of `seq_len + 1` tokens at seeded random starts.
    pub fn train_windows(&self, n: usize, seq_len: usize, seed: u64) -> Vec<Vec<u32>> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let last = self.train.len() - (seq_len + 1);
        (0..n)
            .map(|_| {
                let s = rng.random_range(0..=last);
                self.train[s..s + seq_len + 1].to_vec()
            })
            .collect()
    }

    /// Disjoint validation windows of `seq_len + 1` tokens, at most `max`.
    pub fn val_windows(&self, seq_len: usize, max: usize) -> Vec<Vec<u32>> {
        self.val
            .chunks_exact(seq_len + 1)
            .take(max)
            .map(|c| c.to_vec())
            .collect()
    }
}
