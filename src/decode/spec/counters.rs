//! Forward and acceptance counts of one generation.

#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub draft_forwards: usize,
    pub target_forwards: usize,
    /// Draft forwards saved by recycling rejected K/V.
    pub draft_steps_saved: usize,
    /// Rejections whose K/V the target kept in its deeper layers.
    pub target_recycled: usize,
    /// Cascade: the intermediate's own verification of the draft.
    pub inner_drafted: usize,
    pub inner_accepted: usize,
    pub intermediate_forwards: usize,
}
