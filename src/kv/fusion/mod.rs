//! RAG KV fusion: splice precomputed chunk KVs (re-rotated to their place in
//! the prompt) and recompute a selected fraction of document tokens.
//!
//! Layout: `[prefix][chunk 0]..[chunk n-1][question]`. Every selector returns
//! document-token indices to recompute; `fuse` recomputes them (and the
//! question) in one forward over the fused cache: the selected entries are
//! dropped from it and their tokens re-run at their own positions, so masks
//! from positions make them attend to everything before them, cached or not.
//! Method names follow seed 003 (A³): `full` recomputes only the question,
//! `cat` only the question's last token (the rest of the question reuses its
//! own KV computed alone, like a chunk).

pub mod a3;
pub mod alone;
pub mod answer;
pub mod attnlink;
pub mod blend;
pub mod budget;
pub mod fuse;
pub mod layout;
pub mod press_after;
pub mod surprisal;

#[cfg(test)]
mod tests;

pub use fuse::{fuse, FuseOpts, Fused, Method};
pub use layout::{FusionInput, Segment};
#[cfg(test)]
mod measure_tests;
