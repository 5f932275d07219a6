//! Recomputation budgets and the small ranking helpers selectors share.

/// `k = clamp(round(rate * doc_len), 1, doc_len)`; 0 for an empty document.
pub fn budget(rate: f64, doc_len: usize) -> usize {
    if doc_len == 0 {
        return 0;
    }
    let k = (rate * doc_len as f64).round();
    (k.max(1.0) as usize).min(doc_len)
}

/// Splits `k` over chunks in proportion to their lengths: floors first,
/// then the remainder to the largest fractional parts (ties: earlier chunk).
/// Sums to `min(k, total)`; no chunk gets more than its length.
pub fn per_chunk(k: usize, lens: &[usize]) -> Vec<usize> {
    let total: usize = lens.iter().sum();
    if total == 0 {
        return vec![0; lens.len()];
    }
    let k = k.min(total);
    let mut out: Vec<usize> = lens.iter().map(|&n| k * n / total).collect();
    let mut rest: Vec<(usize, usize)> = lens
        .iter()
        .enumerate()
        .map(|(i, &n)| (i, (k * n) % total))
        .collect();
    // Largest remainder first; stable sort keeps earlier chunks first on ties.
    rest.sort_by_key(|r| std::cmp::Reverse(r.1));
    let left = k - out.iter().sum::<usize>();
    // A non-zero remainder means k·n/total < n, so +1 stays within the chunk.
    for &(i, _) in rest.iter().filter(|(_, r)| *r > 0).take(left) {
        out[i] += 1;
    }
    out
}

/// Indices of the `k` largest scores, ascending (ties: lower index wins;
/// NaN ranks last).
pub fn top_k(scores: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    let key = |i: usize| {
        let s = scores[i];
        if s.is_nan() {
            f32::NEG_INFINITY
        } else {
            s
        }
    };
    idx.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
    idx.truncate(k.min(scores.len()));
    idx.sort_unstable();
    idx
}

/// `avg_pool1d(kernel, stride 1, padding kernel/2)` with zero padding counted
/// (PyTorch's default), so the output has the input's length.
pub fn avg_pool(x: &[f32], kernel: usize) -> Vec<f32> {
    let half = kernel / 2;
    (0..x.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(x.len());
            x[lo..hi].iter().sum::<f32>() / kernel as f32
        })
        .collect()
}
