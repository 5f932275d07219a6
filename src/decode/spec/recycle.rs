//! Rejected-KV recycling (ReKV). After a rejection at position `at`:
//!
//! - `Draft`: the draft keeps the K/V it computed for the rejected token at
//!   `at`, standing in for the emitted token's, and its next proposal starts
//!   from the logits it already computed after the rejected token — one
//!   draft forward saved per rejection (`draft_steps_saved`). Only the
//!   draft's view of the text is approximated; the target verifies every
//!   token against its own exact cache, so greedy output is unchanged. Needs
//!   a draft with a cache of its own (`Draft::Model`): self-speculation's
//!   draft layers are the target's. Possible when the draft ran the rejected
//!   token, i.e. it was not the last of its window.
//! - `Target { from_layer }`: the target's layers >= `from_layer` keep the
//!   rejected token's K/V at `at` (`KvCache::keep_entry_at`), so the next
//!   verification forward does not write the emitted token's K/V there. The
//!   emitted token still runs every layer (its logits verify the next draft),
//!   so this saves no target compute; and the target's later logits read the
//!   substituted K/V, so greedy output may differ from plain decoding after
//!   the first rejection. It puts ReKV's similarity verdict to the test of
//!   generation: how much the output and the acceptance change
//!   (`target_recycled` counts the substitutions).
//! - `Both { from_layer }`: the two together.

use super::rollback::rollback_to;
use crate::kv::KvCache;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Recycle {
    #[default]
    Off,
    Draft,
    Target {
        from_layer: usize,
    },
    Both {
        from_layer: usize,
    },
}

/// The names `Recycle::parse_with` knows.
pub const RECYCLE: &[&str] = &["off", "draft", "target", "both"];

impl Recycle {
    /// `off` or `draft` (the target modes need a layer: `parse_with`).
    pub fn parse(s: &str) -> Option<Self> {
        Self::parse_with(s, 0).filter(|r| r.target_from().is_none())
    }

    /// A mode by name; `from_layer` is the first target layer recycled.
    pub fn parse_with(s: &str, from_layer: usize) -> Option<Self> {
        match s {
            "off" => Some(Recycle::Off),
            "draft" => Some(Recycle::Draft),
            "target" => Some(Recycle::Target { from_layer }),
            "both" => Some(Recycle::Both { from_layer }),
            _ => None,
        }
    }

    /// Recycles into the draft's own cache.
    pub fn draft(&self) -> bool {
        matches!(self, Recycle::Draft | Recycle::Both { .. })
    }

    /// The first target layer that keeps rejected K/V, if any.
    pub fn target_from(&self) -> Option<usize> {
        match self {
            Recycle::Target { from_layer } | Recycle::Both { from_layer } => Some(*from_layer),
            _ => None,
        }
    }
}

/// Recycles drafted token `k` (at `pending + 1 + k`) for the emitted token
/// now last in `seq`: keeps its cache entry, relabels `fed`, and returns the
/// logits after it (`step_logits[k]`); None when the draft never ran it.
pub(crate) fn recycle_rejected(
    cache: &mut KvCache,
    fed: &mut Vec<u32>,
    step_logits: &[Vec<f32>],
    seq: &[u32],
    k: usize,
    pending: usize,
) -> Option<Vec<f32>> {
    let at = pending + 1 + k;
    if seq.len() != at + 1 || fed.len() <= at || k >= step_logits.len() {
        return None;
    }
    rollback_to(cache, at + 1);
    fed.truncate(at + 1);
    fed[at] = seq[at];
    Some(step_logits[k].clone())
}

/// The target's rollback after a rejection at `at` with target recycling:
/// layers below `from` drop `at` on; the others keep the rejected entry at
/// `at` for the emitted token. False when no layer held it.
pub(crate) fn keep_rejected_in_target(cache: &mut KvCache, at: usize, from: usize) -> bool {
    rollback_to(cache, at + 1);
    let mut kept = false;
    for l in 0..cache.n_layers() {
        let holds = cache.positions(l).last() == Some(&(at as i64));
        if l < from {
            if holds {
                let n = cache.len(l);
                cache.truncate_layer(l, n - 1);
            }
        } else if holds {
            cache.keep_entry_at(l, at as i64);
            kept = true;
        }
    }
    kept
}
