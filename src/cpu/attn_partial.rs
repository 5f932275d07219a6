//! What one decode-attention task returns for the query heads of a KV head
//! over its range of keys: merged across tasks by log-sum-exp rescaling
//! (`decode_attn`), produced by each kernel (`decode_attn`,
//! `decode_attn_avx2`).

/// One task's partial result for the n_rep queries of a KV head.
pub(crate) struct Partial {
    /// Per query row: the max score over the range.
    pub(crate) max: Vec<f32>,
    /// Per query row: Σ exp(score − max).
    pub(crate) sum: Vec<f32>,
    /// `[n_rep, hd]` unnormalised weighted sum of values.
    pub(crate) acc: Vec<f32>,
}
