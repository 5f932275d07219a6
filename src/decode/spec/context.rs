//! `Cx`: the mutable state of one generation that the draft and the
//! verification share.

use super::counters::Counters;
use crate::decode::warp::Warp;

/// Mutable state shared by the draft and verification within a generation.
pub(crate) struct Cx<'o> {
    pub warp: Warp,
    pub rng: rand::rngs::StdRng,
    pub stop_ids: &'o [u32],
    pub rekv: bool,
    /// Draft recycling (recycle.rs).
    pub recycle: bool,
    /// Target recycling: the first layer that keeps rejected K/V.
    pub recycle_target: Option<usize>,
    pub counters: Counters,
}
