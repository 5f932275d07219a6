//! random (kvpress `RandomPress`): uniform scores from a seeded generator.
//! As in kvpress the generator is reseeded for every layer, so every layer
//! draws the same scores. The generator is torch's CPU one (mt19937 seeded
//! with the low 32 bits of the seed; a float is the low 24 bits of one
//! draw times 2^-24, drawn in row-major [kv_head, token] order), so the
//! scores, and the kept sets, equal `torch.rand(..., generator=g)`'s.

use super::observed::LayerCtx;
use crate::error::Result;

/// The 32-bit Mersenne twister (`std::mt19937`).
pub struct Mt19937 {
    mt: [u32; 624],
    i: usize,
}

impl Mt19937 {
    pub fn new(seed: u64) -> Self {
        let mut mt = [0u32; 624];
        mt[0] = seed as u32;
        for i in 1..624 {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { mt, i: 624 }
    }

    fn twist(&mut self) {
        for k in 0..624 {
            let y = (self.mt[k] & 0x8000_0000) | (self.mt[(k + 1) % 624] & 0x7fff_ffff);
            let mut v = self.mt[(k + 397) % 624] ^ (y >> 1);
            if y & 1 != 0 {
                v ^= 0x9908_b0df;
            }
            self.mt[k] = v;
        }
        self.i = 0;
    }

    pub fn next_u32(&mut self) -> u32 {
        if self.i >= 624 {
            self.twist();
        }
        let mut y = self.mt[self.i];
        self.i += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// torch's `uniform_real_distribution<float>` on [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        ((self.next_u32() & ((1 << 24) - 1)) as f64 * (1.0f64 / (1u64 << 24) as f64)) as f32
    }
}

pub fn score(ctx: &LayerCtx, seed: u64) -> Result<Vec<Vec<f32>>> {
    let mut g = Mt19937::new(seed);
    Ok((0..ctx.kv_heads())
        .map(|_| (0..ctx.len()).map(|_| g.next_f32()).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_what_torch_rand_draws() {
        // torch 2.15: g = torch.Generator(); g.manual_seed(0); torch.rand(1, 2, 4, generator=g)
        let want = [
            0.496_256_6_f32,
            0.768_221_8,
            0.088_477_43,
            0.132_030_49,
            0.307_422_82,
        ];
        let mut g = super::Mt19937::new(0);
        for w in want {
            assert!((g.next_f32() - w).abs() < 1e-7);
        }
    }
}
