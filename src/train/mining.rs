//! Hard-example mining: rank tokens by the shallow model's confidence and
//! select exactly the least confident `ratio` fraction.

use super::config::{check_fraction, MiningScore};
use super::trainer::TokenStat;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct Mined {
    /// Per token (the order of the scores given): selected as hard?
    pub hard: Vec<bool>,
    pub n_hard: usize,
    /// The largest score among the selected: hard tokens have score <=
    /// threshold. Ties at the threshold are split by token index (earlier
    /// first), so exactly `n_hard` are selected.
    pub threshold: f32,
    pub score: MiningScore,
}

pub fn score_of(s: &TokenStat, score: MiningScore) -> f32 {
    match score {
        MiningScore::MaxProb => s.max_prob,
        MiningScore::TrueProb => s.true_prob,
    }
}

/// Selects the `round(ratio * n)` lowest scores (at least one, at most n-1).
pub fn select_hardest(scores: &[f32], ratio: f64, score: MiningScore) -> Result<Mined> {
    check_fraction("hard_example_ratio", ratio)?;
    let n = scores.len();
    if n < 2 {
        return Err(crate::error::input_err(
            super::config::CONFIG_FILE,
            "training set",
            format!("{n} tokens to mine; need at least 2"),
        ));
    }
    let k = ((ratio * n as f64).round() as usize).clamp(1, n - 1);
    let mut idx: Vec<usize> = (0..n).collect();
    // total_cmp orders NaN last (never hard); the index breaks ties.
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
    let mut hard = vec![false; n];
    for &i in &idx[..k] {
        hard[i] = true;
    }
    Ok(Mined {
        hard,
        n_hard: k,
        threshold: scores[idx[k - 1]],
        score,
    })
}
