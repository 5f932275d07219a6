//! Rotary position embedding in Hugging Face's half-split layout
//! (`rotate_half`): dimension i pairs with i + d/2. GGUF llama Q/K weights are
//! un-permuted at load so this one layout serves both loaders.
//!
//! Rotations compose (R(a)·R(b) = R(a+b)), so moving cached keys from position
//! p to p+δ is one more rotation by δ — see `KvCache::rerotate`.

use candle_core::{DType, Device, Tensor};

use crate::error::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct Rope {
    head_dim: usize,
    theta: f64,
    /// 1 / theta^(2i/d), computed in f32 the way transformers does.
    inv_freq: Vec<f32>,
}

impl Rope {
    pub fn new(head_dim: usize, theta: f64) -> Self {
        let half = head_dim / 2;
        let base = theta as f32;
        let inv_freq = (0..half)
            .map(|i| 1.0f32 / base.powf((2 * i) as f32 / head_dim as f32))
            .collect();
        Rope {
            head_dim,
            theta,
            inv_freq,
        }
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    pub fn theta(&self) -> f64 {
        self.theta
    }

    /// cos and sin tables `[T, d/2]` for the given positions, on `dev`.
    pub fn cos_sin(
        &self,
        positions: &[i64],
        dtype: DType,
        dev: &Device,
    ) -> Result<(Tensor, Tensor)> {
        if !dev.is_cpu() {
            return self.cos_sin_on(positions, dtype, dev);
        }
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(positions.len() * half);
        let mut sin = Vec::with_capacity(positions.len() * half);
        for &p in positions {
            let p = p as f32;
            for &f in &self.inv_freq {
                let a = p * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        let shape = (positions.len(), half);
        let cos = Tensor::from_vec(cos, shape, dev)?.to_dtype(dtype)?;
        let sin = Tensor::from_vec(sin, shape, dev)?.to_dtype(dtype)?;
        Ok((cos, sin))
    }

    /// `cos_sin` computed on `dev` (the same f32 angles, `p * inv_freq`):
    /// only the positions and frequencies travel, not the tables.
    fn cos_sin_on(
        &self,
        positions: &[i64],
        dtype: DType,
        dev: &Device,
    ) -> Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let p: Vec<f32> = positions.iter().map(|&p| p as f32).collect();
        let p = Tensor::from_vec(p, (positions.len(), 1), dev)?;
        let f = Tensor::from_vec(self.inv_freq.clone(), (1, half), dev)?;
        let a = p.broadcast_mul(&f)?;
        Ok((a.cos()?.to_dtype(dtype)?, a.sin()?.to_dtype(dtype)?))
    }

    /// Rotates `x` `[heads, T, d]` so that row t sits at `positions[t]`.
    pub fn apply(&self, x: &Tensor, positions: &[i64]) -> Result<Tensor> {
        let (cos, sin) = self.cos_sin(positions, x.dtype(), x.device())?;
        self.apply_tables(x, &cos, &sin)
    }

    /// As `apply`, with tables from `cos_sin` (shared by Q and K in a layer).
    pub fn apply_tables(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let x4 = x.unsqueeze(0)?.contiguous()?;
        Ok(candle_nn::rotary_emb::rope(&x4, cos, sin)?.squeeze(0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotations_compose() {
        let rope = Rope::new(8, 10_000.0);
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (2, 3, 8), &dev).unwrap();
        let a = rope.apply(&x, &[5, 6, 7]).unwrap();
        let b = rope
            .apply(&rope.apply(&x, &[2, 3, 4]).unwrap(), &[3, 3, 3])
            .unwrap();
        let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
        // position 0 is the identity
        let z = rope.apply(&x, &[0, 0, 0]).unwrap();
        let d0 = (z - &x).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(d0.to_scalar::<f32>().unwrap(), 0.0);
    }

    /// The device construction of the tables (run here on the CPU) matches
    /// the host's to f32 rounding of sin/cos.
    #[test]
    fn device_tables_match_host_tables() {
        let rope = Rope::new(64, 500_000.0);
        let pos: Vec<i64> = (0..300).map(|i| i * 37).collect();
        let (c, s) = rope.cos_sin(&pos, DType::F32, &Device::Cpu).unwrap();
        let (dc, ds) = rope.cos_sin_on(&pos, DType::F32, &Device::Cpu).unwrap();
        for (a, b) in [(c, dc), (s, ds)] {
            let d = (a - b).unwrap().abs().unwrap().max_all().unwrap();
            assert!(d.to_scalar::<f32>().unwrap() < 1e-6);
        }
    }
}
