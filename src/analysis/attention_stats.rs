//! Where attention goes (seed 002, phase 0): for a window of queries, the
//! attention mass each (layer, head) pays to keys of each token type and
//! position bucket (`sink` = the first `n_sink`, `recent` = the last
//! `recent` before the query, `middle`), and each head's concentration: the
//! fraction of visible keys that hold 80% of a query's attention.

pub const BUCKETS: &[&str] = &["sink", "middle", "recent"];

/// Accumulated over queries (and windows): per layer, head, type, bucket.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct AttentionStats {
    pub n_layers: usize,
    pub n_heads: usize,
    /// [layer][head][type * BUCKETS + bucket]: summed attention mass.
    pub mass: Vec<Vec<Vec<f64>>>,
    /// Summed key counts per (type, bucket), over queries (same for all heads).
    pub keys: Vec<f64>,
    /// [layer][head]: summed fraction of keys holding 80% of the mass.
    pub concentration: Vec<Vec<f64>>,
    /// [layer][head][key position]: summed mass received per absolute position.
    pub by_position: Vec<f64>,
    pub n_queries: f64,
}

fn bucket(k: usize, q: usize, n_sink: usize, recent: usize) -> usize {
    if k < n_sink {
        0
    } else if q - k < recent {
        2
    } else {
        1
    }
}

/// Fraction of the `probs` (one query's, over its visible keys) needed to reach 80%.
pub fn concentration(probs: &[f32]) -> f64 {
    let mut p: Vec<f32> = probs.to_vec();
    p.sort_by(|a, b| b.total_cmp(a));
    let total: f64 = p.iter().map(|&x| x as f64).sum();
    let mut acc = 0.0;
    for (i, &x) in p.iter().enumerate() {
        acc += x as f64;
        if acc >= 0.8 * total {
            return (i + 1) as f64 / p.len() as f64;
        }
    }
    1.0
}

impl AttentionStats {
    pub fn new(n_layers: usize, n_heads: usize, n_types: usize, max_len: usize) -> Self {
        AttentionStats {
            n_layers,
            n_heads,
            mass: vec![vec![vec![0.0; n_types * BUCKETS.len()]; n_heads]; n_layers],
            keys: vec![0.0; n_types * BUCKETS.len()],
            concentration: vec![vec![0.0; n_heads]; n_layers],
            by_position: vec![0.0; max_len],
            n_queries: 0.0,
        }
    }

    /// Adds one layer's attention `att[head][query][key]` for queries at
    /// absolute positions `q0..`, keys typed by `types` (indices).
    #[allow(clippy::too_many_arguments)]
    pub fn add_layer(
        &mut self,
        layer: usize,
        att: &[Vec<Vec<f32>>],
        q0: usize,
        types: &[usize],
        n_sink: usize,
        recent: usize,
    ) {
        let nb = BUCKETS.len();
        for (h, per_q) in att.iter().enumerate() {
            for (qi, row) in per_q.iter().enumerate() {
                let q = q0 + qi;
                let vis = &row[..=q.min(row.len() - 1)];
                for (k, &p) in vis.iter().enumerate() {
                    let c = types[k] * nb + bucket(k, q, n_sink, recent);
                    self.mass[layer][h][c] += p as f64;
                    if layer == 0 && h == 0 {
                        self.keys[c] += 1.0;
                    }
                    if k < self.by_position.len() {
                        self.by_position[k] += p as f64 / (self.n_layers * self.n_heads) as f64;
                    }
                }
                self.concentration[layer][h] += concentration(vis);
                if layer == 0 && h == 0 {
                    self.n_queries += 1.0;
                }
            }
        }
    }

    /// Sums `other` into `self` (windows of one analysis).
    pub fn merge(&mut self, o: &AttentionStats) {
        for (a, b) in self.mass.iter_mut().flatten().zip(o.mass.iter().flatten()) {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
        self.keys.iter_mut().zip(&o.keys).for_each(|(x, y)| *x += y);
        for (a, b) in self.concentration.iter_mut().zip(&o.concentration) {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
        self.by_position
            .iter_mut()
            .zip(&o.by_position)
            .for_each(|(x, y)| *x += y);
        self.n_queries += o.n_queries;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concentration_and_buckets() {
        assert_eq!(concentration(&[0.9, 0.05, 0.05]), 1.0 / 3.0);
        assert_eq!(concentration(&[0.25; 4]), 1.0);
        let mut s = AttentionStats::new(1, 1, 2, 8);
        // One query at position 5 over 6 keys; keys 0..4 type 0, 4..6 type 1.
        let att = vec![vec![vec![0.5, 0.1, 0.1, 0.1, 0.1, 0.1]]];
        s.add_layer(0, &att, 5, &[0, 0, 0, 0, 1, 1], 1, 2);
        let m = &s.mass[0][0];
        assert!((m[0] - 0.5).abs() < 1e-6); // type 0 sink
        assert!((m[1] - 0.3).abs() < 1e-6); // type 0 middle
        assert!((m[3 + 2] - 0.2).abs() < 1e-6); // type 1 recent
        assert_eq!(s.n_queries, 1.0);
    }
}
