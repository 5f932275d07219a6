//! What a fusion works on: the prompt's parts and the document's layout,
//! and the assembled cache `[prefix][chunks re-rotated into place]`.

use crate::error::{other, Result};
use crate::kv::KvCache;
use crate::model::Model;

/// One document chunk: its tokens, its KV computed alone (at positions
/// starting right after the prefix) and its per-token surprisal.
#[derive(Debug, Clone)]
pub struct Segment {
    pub ids: Vec<u32>,
    pub kv: KvCache,
    pub surprisal: Vec<f32>,
}

#[derive(Debug, Clone)]
pub struct FusionInput {
    pub prefix: Vec<u32>,
    /// The prefix's KV (positions 0..prefix.len()); None without a prefix.
    pub prefix_kv: Option<KvCache>,
    pub segments: Vec<Segment>,
    pub question: Vec<u32>,
}

impl FusionInput {
    pub fn prefix_len(&self) -> usize {
        self.prefix.len()
    }

    pub fn doc_len(&self) -> usize {
        self.segments.iter().map(|s| s.ids.len()).sum()
    }

    pub fn seg_lens(&self) -> Vec<usize> {
        self.segments.iter().map(|s| s.ids.len()).collect()
    }

    pub fn doc_ids(&self) -> Vec<u32> {
        self.segments.iter().flat_map(|s| s.ids.clone()).collect()
    }

    /// Absolute position of document token `i`.
    pub fn doc_pos(&self, i: usize) -> i64 {
        (self.prefix_len() + i) as i64
    }

    /// Positions of the question's tokens.
    pub fn question_pos(&self) -> Vec<i64> {
        let start = self.prefix_len() + self.doc_len();
        (start..start + self.question.len())
            .map(|p| p as i64)
            .collect()
    }

    /// prefix + document + question: what a full prefill runs.
    pub fn all_ids(&self) -> Vec<u32> {
        let mut ids = self.prefix.clone();
        ids.extend(self.doc_ids());
        ids.extend(&self.question);
        ids
    }
}

/// `[prefix][chunk KVs]`, each chunk re-rotated from where it was computed
/// to its place in this prompt.
pub fn assemble(model: &Model, input: &FusionInput) -> Result<KvCache> {
    let mut cache = match &input.prefix_kv {
        Some(p) => p.clone(),
        None => model.new_cache(),
    };
    if cache.len(0) != input.prefix_len() {
        return Err(other(format!(
            "fusion: prefix KV has {} entries for {} prefix tokens",
            cache.len(0),
            input.prefix_len()
        )));
    }
    let mut at = input.prefix_len();
    for (i, s) in input.segments.iter().enumerate() {
        if s.kv.len(0) != s.ids.len() || s.surprisal.len() != s.ids.len() {
            return Err(other(format!(
                "fusion: segment {i} has {} tokens, {} KV entries, {} surprisals",
                s.ids.len(),
                s.kv.len(0),
                s.surprisal.len()
            )));
        }
        if s.ids.is_empty() {
            continue;
        }
        let mut kv = s.kv.clone();
        kv.rerotate(at as i64 - kv.positions(0)[0])?;
        cache.extend(&kv)?;
        at += s.ids.len();
    }
    Ok(cache)
}
