//! KV-cache operations: the owned cache, RoPE re-rotation, compressed files.

pub mod cache;
mod file;
pub mod press;
pub mod rope;

#[cfg(test)]
mod cache_tests;

pub use cache::{KvCache, BLOCK};
pub use rope::Rope;
