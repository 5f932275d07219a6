//! The block norms: RMSNorm, or LayerNorm with a bias, shared by blocks and
//! attention (QK-norm).

use candle_core::Tensor;

use super::role::Role;
use super::weights::Weights;
use crate::error::Result;

/// RMSNorm, or LayerNorm when it has a bias; statistics in f32 (candle's
/// fused kernels).
#[derive(Debug, Clone)]
pub struct Norm {
    weight: Tensor,
    bias: Option<Tensor>,
    eps: f32,
}

/// The name the rest of the engine used before LayerNorm existed.
pub type RmsNorm = Norm;

impl Norm {
    pub(crate) fn load(w: &Weights, role: Role, layer: usize) -> Result<Self> {
        let f = &w.cfg.family;
        let mut weight = w.vector(role, layer, false)?;
        if f.norm_plus_one {
            weight = (weight + 1.0)?;
        }
        // QK-norm is RMSNorm even where the block norms are LayerNorms.
        let bias = match (f.layer_norm, role) {
            (false, _) | (true, Role::QNorm | Role::KNorm) => None,
            (true, _) => Some(w.vector(role, layer, true)?),
        };
        Ok(Norm {
            weight,
            bias,
            eps: w.cfg.rms_norm_eps as f32,
        })
    }

    /// Normalizes over the last dimension.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.contiguous()?;
        Ok(match &self.bias {
            Some(b) => candle_nn::ops::layer_norm(&x, &self.weight, b, self.eps)?,
            None => candle_nn::ops::rms_norm(&x, &self.weight, self.eps)?,
        })
    }
}
