//! pyramidkv (kvpress `PyramidKVPress`): SnapKV's scores with a per-layer
//! budget that shrinks linearly with depth (`budget::pyramid_keep`).

use super::budget::Schedule;

pub fn schedule(window: usize, beta: usize) -> Schedule {
    Schedule::Pyramid { window, beta }
}
