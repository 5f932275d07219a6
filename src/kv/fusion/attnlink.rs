//! `attnlink`: recompute caller-given document positions (seed 003's
//! `sink_pos`), validated; and the default the evaluation gives it.

use super::budget::per_chunk;
use crate::error::{other, Result};

/// Sorted, deduplicated; an index outside the document is an error.
pub fn select(positions: &[usize], doc_len: usize) -> Result<Vec<usize>> {
    if let Some(bad) = positions.iter().find(|&&p| p >= doc_len) {
        return Err(other(format!(
            "fusion attnlink: position {bad} outside the document (0..{doc_len})"
        )));
    }
    let mut v = positions.to_vec();
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

/// The first tokens of every chunk (each chunk's own attention sinks, which
/// lose that role once the chunk is moved behind others), `k` in all, split
/// over chunks by length.
pub fn chunk_starts(lens: &[usize], k: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(k);
    let mut at = 0;
    for (&n, b) in lens.iter().zip(per_chunk(k, lens)) {
        out.extend(at..at + b);
        at += n;
    }
    out
}
