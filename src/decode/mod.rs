//! Decoding: sampling rules and generation loops.

pub mod cache_press;
pub mod early_exit;
pub mod generate;
pub mod method;
pub mod sampling;
pub mod spec;
pub mod warp;

#[cfg(test)]
mod cache_press_tests;
