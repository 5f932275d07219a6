//! A hook between speculative rounds with the caches in hand, so a KV press
//! can compress the target's and/or the draft's cache during decoding (seed
//! 004's SpecDec + KVPress). Entries keep their absolute positions, so the
//! rollback of rejected drafts (`rollback_to`, by position) stays correct on
//! a compressed cache; a press must keep the most recent entry of each layer
//! (`Model::forward` places new tokens after the largest cached position).

use crate::error::Result;
use crate::kv::KvCache;

pub trait PressHook {
    /// Called before every speculative round (after the prefill and after
    /// each round). `draft` is None when the draft has no cache of its own
    /// (self-speculation shares the target's; prompt lookup has none).
    fn between_rounds(
        &mut self,
        round: usize,
        target: &mut KvCache,
        draft: Option<&mut KvCache>,
    ) -> Result<()>;
}

/// The default: leaves both caches alone.
pub struct NoPress;

impl PressHook for NoPress {
    fn between_rounds(&mut self, _: usize, _: &mut KvCache, _: Option<&mut KvCache>) -> Result<()> {
        Ok(())
    }
}

/// Any closure is a hook.
impl<F> PressHook for F
where
    F: FnMut(usize, &mut KvCache, Option<&mut KvCache>) -> Result<()>,
{
    fn between_rounds(
        &mut self,
        round: usize,
        target: &mut KvCache,
        draft: Option<&mut KvCache>,
    ) -> Result<()> {
        self(round, target, draft)
    }
}
