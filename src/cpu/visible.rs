//! The position rule every attention path masks by (see `model::attention`):
//! its own file so the fused kernels and the tensor path share one rule.

/// Who sees whom: key at position `k` is visible to a query at `q`.
#[inline(always)]
pub fn visible(q: i64, k: i64, window: Option<usize>) -> bool {
    k <= q && window.is_none_or(|w| ((q - k) as u64) < w as u64)
}
