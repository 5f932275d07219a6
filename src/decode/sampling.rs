//! Choosing the next token from logits: greedy, or sampling at a temperature.

use crate::error::Result;
use candle_core::Tensor;
use rand::Rng;

/// Index of the largest logit (first on ties, like torch.argmax).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Softmax of `logits / temperature`, in f64 for stable sums.
pub fn probabilities(logits: &[f32], temperature: f64) -> Vec<f64> {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let mut p: Vec<f64> = logits
        .iter()
        .map(|&l| ((l as f64 - max) / temperature).exp())
        .collect();
    let sum: f64 = p.iter().sum();
    p.iter_mut().for_each(|x| *x /= sum);
    p
}

/// Draw an index from a probability vector.
pub fn sample_from(p: &[f64], rng: &mut impl Rng) -> u32 {
    let u: f64 = rng.random();
    let mut acc = 0.0;
    for (i, &x) in p.iter().enumerate() {
        acc += x;
        if u < acc {
            return i as u32;
        }
    }
    (p.len() - 1) as u32
}

/// Greedy when `temperature` is 0, else a draw from the tempered softmax.
/// Off the CPU, greedy reads back only the chosen id (the argmax runs on
/// the device; ties there need not go to the first maximum).
pub fn next_token(logits: &Tensor, temperature: f64, rng: &mut impl Rng) -> Result<u32> {
    if temperature <= 0.0 && !logits.device().is_cpu() {
        return Ok(logits.flatten_all()?.argmax(0)?.to_scalar::<u32>()?);
    }
    let v: Vec<f32> = logits.flatten_all()?.to_vec1()?;
    Ok(if temperature <= 0.0 {
        argmax(&v)
    } else {
        sample_from(&probabilities(&v, temperature), rng)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn argmax_takes_first_maximum() {
        assert_eq!(argmax(&[0.0, 3.0, 1.0, 3.0]), 1);
    }

    #[test]
    fn sampling_follows_the_distribution() {
        let p = probabilities(&[0.0, (3.0f32).ln(), 0.0], 1.0); // 0.2, 0.6, 0.2
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut counts = [0usize; 3];
        for _ in 0..20_000 {
            counts[sample_from(&p, &mut rng) as usize] += 1;
        }
        let f = counts[1] as f64 / 20_000.0;
        assert!((f - 0.6).abs() < 0.02, "{counts:?}");
    }
}
