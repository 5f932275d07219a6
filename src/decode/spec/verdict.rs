//! The outcome of verifying one round's drafted tokens.

/// The outcome of a verification: `accepted` drafted tokens, then `next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub accepted: usize,
    pub next: u32,
}
