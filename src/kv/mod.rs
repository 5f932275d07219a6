//! KV-cache operations: the owned cache, RoPE re-rotation, compressed files,
//! and RAG fusion of precomputed chunk KVs.

pub mod cache;
pub mod codec;
mod file;
pub mod fusion;
pub mod press;
pub mod rope;

#[cfg(test)]
mod cache_tests;

pub use cache::{KvCache, BLOCK};
pub use codec::Codec;
pub use file::{FileStats, DEFAULT_CODEC};
pub use rope::Rope;
