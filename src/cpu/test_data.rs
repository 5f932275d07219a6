//! Data for the attention kernels' tests: a seeded uniform stream, and the
//! same values in every cache storage.

use half::{bf16, f16};

/// Knuth's MMIX LCG: a reproducible stream of 64-bit states.
pub fn lcg(seed: u64) -> impl Iterator<Item = u64> {
    let step = |s: &u64| {
        Some(
            s.wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407),
        )
    };
    std::iter::successors(step(&seed), step)
}

/// `n` values uniform in `[-scale, scale)`, reproducible from `seed`.
pub fn uniform(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    lcg(seed)
        .take(n)
        .map(|s| ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale)
        .collect()
}

/// `f32` holds values an f16 cache stores exactly (so f32 and f16 runs
/// must agree); `bf16_f32` the bf16-rounded ones as f32.
pub struct Stored {
    pub f32: Vec<f32>,
    pub f16: Vec<f16>,
    pub bf16: Vec<bf16>,
    pub bf16_f32: Vec<f32>,
}

impl Stored {
    /// Keys and values: `n` uniform values each, from seeds `seed`, `seed + 1`.
    pub fn kv(seed: u64, n: usize) -> (Stored, Stored) {
        (
            Stored::of(&uniform(seed, n, 1.0)),
            Stored::of(&uniform(seed + 1, n, 1.0)),
        )
    }

    pub fn of(x: &[f32]) -> Stored {
        let f16: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
        let bf16: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
        Stored {
            f32: f16.iter().map(|v| v.to_f32()).collect(),
            bf16_f32: bf16.iter().map(|v| v.to_f32()).collect(),
            f16,
            bf16,
        }
    }
}

/// The textbook softmax, for references.
pub fn softmax(x: &[f32]) -> Vec<f32> {
    let m = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = x.iter().map(|v| (v - m).exp()).collect();
    let z: f32 = e.iter().sum();
    e.iter().map(|v| v / z).collect()
}

pub fn assert_same(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-6, "{what}: {x} vs {y}");
    }
}
