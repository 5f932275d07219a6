//! Decoding: sampling rules and generation loops.

pub mod generate;
pub mod sampling;
pub mod early_exit;
