//! Stochastic verification (Leviathan et al. 2023; Chen et al. 2023): the
//! drafted token x at position i is accepted with probability
//! `min(1, p_i(x) / q_i(x))`; at the first rejection the token is resampled
//! from `norm(max(0, p_i − q_i))`; when every token was accepted a bonus token
//! is drawn from the target's next distribution. The emitted tokens are then
//! distributed exactly as sampling from p. p and q must be warped by the
//! same `Warp` (temperature, top-k, top-p).

use super::Verdict;
use crate::decode::sampling::sample_from;
use rand::Rng;

#[cfg(test)]
thread_local! {
    /// Test-only: accept with min(1, q/p) instead, to show the χ² test can fail.
    pub(crate) static BROKEN_RULE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn broken() -> bool {
    #[cfg(test)]
    {
        BROKEN_RULE.with(|b| b.get())
    }
    #[cfg(not(test))]
    {
        false
    }
}

/// `p`: the target's warped distributions, `drafted.len() + 1` rows. `q[i]`:
/// the distribution `drafted[i]` was drawn from; `None` means deterministic
/// (one-hot on the drafted token: prompt lookup, a greedy draft).
pub fn verify_stochastic(
    drafted: &[u32],
    q: &[Option<Vec<f64>>],
    p: &[Vec<f64>],
    rng: &mut impl Rng,
) -> Verdict {
    debug_assert_eq!(p.len(), drafted.len() + 1);
    debug_assert_eq!(q.len(), drafted.len());
    for (i, &x) in drafted.iter().enumerate() {
        let pi = p[i][x as usize];
        let qi = q[i].as_ref().map_or(1.0, |q| q[x as usize]);
        // The broken rule keeps p = 0 tokens out, so only its ratio is wrong.
        let ratio = match broken() {
            true if pi > 0.0 => qi / pi,
            true => 0.0,
            false => pi / qi,
        };
        let r: f64 = rng.random();
        if r < ratio.min(1.0) {
            continue;
        }
        // Rejected: resample from the residual max(0, p - q).
        let mut res: Vec<f64> = match &q[i] {
            Some(q) => p[i].iter().zip(q).map(|(a, b)| (a - b).max(0.0)).collect(),
            None => {
                let mut r = p[i].clone();
                r[x as usize] = 0.0;
                r
            }
        };
        let sum: f64 = res.iter().sum();
        if sum <= 0.0 {
            // p == q up to rounding: a rejection had probability ~0; fall back to p.
            res.clone_from(&p[i]);
        } else {
            res.iter_mut().for_each(|v| *v /= sum);
        }
        return Verdict {
            accepted: i,
            next: sample_from(&res, rng),
        };
    }
    Verdict {
        accepted: drafted.len(),
        next: sample_from(&p[drafted.len()], rng),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::sampling::sample_from;
    use rand::SeedableRng;

    /// One window position on synthetic p and q: the emitted token must be
    /// distributed as p whatever q is (exact check on frequencies).
    #[test]
    fn emitted_token_follows_p_on_synthetic_distributions() {
        let p = vec![0.5, 0.3, 0.2, 0.0];
        let q = vec![0.1, 0.2, 0.3, 0.4];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let n = 40_000;
        let mut counts = [0usize; 4];
        for _ in 0..n {
            let x = sample_from(&q, &mut rng);
            let v = verify_stochastic(&[x], &[Some(q.clone())], &[p.clone(), p.clone()], &mut rng);
            let tok = if v.accepted == 1 { x } else { v.next };
            counts[tok as usize] += 1;
        }
        for (c, want) in counts.iter().zip(&p) {
            let f = *c as f64 / n as f64;
            assert!((f - want).abs() < 0.01, "{counts:?}");
        }
        assert_eq!(counts[3], 0, "a token with p = 0 was emitted");
    }
}
