//! Decoding: sampling rules and generation loops.

pub mod early_exit;
pub mod generate;
pub mod sampling;
