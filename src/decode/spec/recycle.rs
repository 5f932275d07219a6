//! Rejected-KV recycling (ReKV): after a rejection the draft keeps the K/V it
//! computed for the rejected token at that position, standing in for the
//! emitted token's, and its next proposal starts from the logits it already
//! computed after the rejected token — one draft forward saved per
//! rejection (counted in `draft_steps_saved`). Only the draft's view of the
//! text is approximated; the target verifies every token against its own
//! exact cache, so greedy output is unchanged.
//!
//! Needs a draft with a cache of its own (`Draft::Model`): self-speculation's
//! draft layers are the target's, where a substituted K/V would change the
//! output. The recycling is possible when the draft ran the rejected token,
//! i.e. it was not the last of its window.

use super::draft::rollback_to;
use crate::kv::KvCache;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Recycle {
    #[default]
    Off,
    Draft,
}

impl Recycle {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Recycle::Off),
            "draft" => Some(Recycle::Draft),
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
