//! Logits -> the sampling distribution: temperature, then top-k, then top-p
//! (nucleus), renormalised. Speculative decoding applies the same `Warp` to
//! the draft's and the target's logits, so p and q live on one support rule.

use super::sampling::probabilities;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Warp {
    /// 0 = greedy (argmax; `probs` is then one-hot).
    pub temperature: f64,
    /// Keep the k most likely tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set whose mass reaches top_p (1.0 = all).
    pub top_p: f64,
}

impl Default for Warp {
    fn default() -> Self {
        Warp {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
        }
    }
}

impl Warp {
    pub fn greedy() -> Self {
        Self::default()
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }

    /// The warped distribution over the vocabulary (sums to 1).
    pub fn probs(&self, logits: &[f32]) -> Vec<f64> {
        if self.is_greedy() {
            let mut p = vec![0.0; logits.len()];
            p[super::sampling::argmax(logits) as usize] = 1.0;
            return p;
        }
        let mut p = probabilities(logits, self.temperature);
        let n = p.len();
        if (self.top_k == 0 || self.top_k >= n) && self.top_p >= 1.0 {
            return p;
        }
        // Descending by probability; ties by index so the kept set is
        // deterministic. With top-k only the k best are sorted (a 49k vocab,
        // per position and round, adds up).
        let mut order: Vec<usize> = (0..n).collect();
        let cmp = |a: &usize, b: &usize| p[*b].total_cmp(&p[*a]).then(a.cmp(b));
        let mut keep = if self.top_k == 0 {
            n
        } else {
            self.top_k.min(n)
        };
        if keep < n {
            order.select_nth_unstable_by(keep - 1, cmp);
            order.truncate(keep);
        }
        order.sort_by(cmp);
        if self.top_p < 1.0 {
            let kept_mass: f64 = order[..keep].iter().map(|&i| p[i]).sum();
            let target = self.top_p * kept_mass;
            let mut acc = 0.0;
            for (j, &i) in order[..keep].iter().enumerate() {
                acc += p[i];
                if acc >= target {
                    keep = j + 1;
                    break;
                }
            }
        }
        let mut out = vec![0.0; n];
        let mut sum = 0.0;
        for &i in &order[..keep] {
            out[i] = p[i];
            sum += p[i];
        }
        out.iter_mut().for_each(|x| *x /= sum);
        p.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_and_top_p_keep_the_right_support() {
        let logits = [0.0f32, 2.0, 1.0, 3.0, -1.0];
        let w = Warp {
            temperature: 1.0,
            top_k: 2,
            top_p: 1.0,
        };
        let p = w.probs(&logits);
        assert_eq!(p.iter().filter(|&&x| x > 0.0).count(), 2);
        assert!(p[3] > p[1] && p[1] > 0.0 && p[2] == 0.0);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Softmax of [3,2,1,0,-1]: 0.636, 0.234, ... top-p 0.7 keeps two.
        let w = Warp {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.7,
        };
        let p = w.probs(&logits);
        assert_eq!(p.iter().filter(|&&x| x > 0.0).count(), 2);
        let w = Warp { top_p: 0.5, ..w };
        assert_eq!(w.probs(&logits).iter().filter(|&&x| x > 0.0).count(), 1);
        let g = Warp::greedy().probs(&logits);
        assert_eq!(g[3], 1.0);
    }
}
