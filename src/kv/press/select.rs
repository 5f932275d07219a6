//! Keeping the top-scored entries. kvpress keeps `scores.topk(n).indices`
//! (torch on CPU); kvlab keeps the same set whenever the n-th and (n+1)-th
//! scores differ. On ties the two differ: torch's CPU top-k runs libstdc++'s
//! `nth_element`/`partial_sort` over (value, index) pairs, which favours
//! neither end (measured on torch 2.15: `ones(100).topk(10)` keeps
//! 63..=69 and 72..=74; `ones(128).topk(64)` keeps 64..=127). kvlab breaks
//! ties towards the lower index, a rule that is stable and documented.
//! Kept indices are returned in ascending order (cache order).

/// The `k` highest-scored indices of `scores`, ascending. NaN ranks lowest.
pub fn top_k(scores: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    let key = |i: usize| {
        if scores[i].is_nan() {
            f32::NEG_INFINITY
        } else {
            scores[i]
        }
    };
    // Stable sort: equal scores keep index order, so the lower index wins.
    idx.sort_by(|&a, &b| key(b).total_cmp(&key(a)));
    idx.truncate(k.min(scores.len()));
    idx.sort_unstable();
    idx
}

/// AdaKV (kvpress `AdaKVPress.compress`): every head first secures its top
/// `max(1, int(keep * alpha))`; then the layer's `keep * heads` best entries
/// are chosen across heads. Returns each head's kept indices (ascending);
/// heads may keep different numbers of entries.
pub fn adakv(scores: &[Vec<f32>], keep: usize, alpha: f64) -> Vec<Vec<usize>> {
    let heads = scores.len();
    let len = scores.first().map_or(0, Vec::len);
    let mut s: Vec<Vec<f32>> = scores.to_vec();
    let n_safe = if alpha > 0.0 {
        ((keep as f64 * alpha) as usize).max(1)
    } else {
        0
    };
    for h in s.iter_mut() {
        for i in top_k(h, n_safe) {
            h[i] = f32::MAX;
        }
    }
    let flat: Vec<f32> = s.iter().flatten().copied().collect();
    let mut kept = vec![Vec::new(); heads];
    for i in top_k(&flat, keep * heads) {
        kept[i / len].push(i % len);
    }
    kept
}

/// Pads every head's kept list to the longest one with that head's next-best
/// entries, so the cache (equal-length heads) can hold the selection.
pub fn top_up(kept: &mut [Vec<usize>], scores: &[Vec<f32>]) {
    let n = kept.iter().map(Vec::len).max().unwrap_or(0);
    for (k, s) in kept.iter_mut().zip(scores) {
        if k.len() < n {
            let mut masked = s.clone();
            for &i in k.iter() {
                masked[i] = f32::INFINITY;
            }
            *k = top_k(&masked, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_highest_and_breaks_ties_low() {
        assert_eq!(top_k(&[0.1, 0.9, 0.5, 0.7], 2), vec![1, 3]);
        assert_eq!(top_k(&[1.0, 0.0, 1.0, 1.0, 0.5, 1.0], 2), vec![0, 2]);
        assert_eq!(top_k(&[f32::NAN, 0.0, 1.0], 2), vec![1, 2]);
        assert_eq!(top_k(&[1.0, 2.0], 5), vec![0, 1]);
    }

    #[test]
    fn adakv_pools_budget_across_heads() {
        let s = vec![vec![9.0, 8.0, 7.0, 6.0], vec![0.1, 0.2, 0.3, 0.4]];
        // keep 2 per head = 4 in all; head 1 secures its best (index 3) only.
        let k = adakv(&s, 2, 0.5);
        assert_eq!(k, vec![vec![0, 1, 2], vec![3]]);
        let mut k2 = k.clone();
        top_up(&mut k2, &s);
        assert_eq!(k2, vec![vec![0, 1, 2], vec![1, 2, 3]]);
    }
}
