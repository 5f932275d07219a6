//! `surprisal_chunk`: per-chunk budgets in proportion to chunk length, then
//! the most surprising tokens inside each chunk (surprisal from precompute).

use super::budget::{per_chunk, top_k};
use super::layout::FusionInput;

pub fn select(input: &FusionInput, k: usize) -> Vec<usize> {
    let budgets = per_chunk(k, &input.seg_lens());
    let mut out = Vec::with_capacity(k);
    let mut at = 0;
    for (s, b) in input.segments.iter().zip(budgets) {
        out.extend(top_k(&s.surprisal, b).into_iter().map(|i| at + i));
        at += s.ids.len();
    }
    out
}
