//! One pre-norm decoder block: `h = x + attn(norm(x)); h + mlp(norm(h))`.

use candle_core::Tensor;

use super::attention::{Attention, Observe};
use super::mlp::Mlp;
use super::role::Role;
use super::weights::Weights;
use crate::error::Result;
use crate::kv::{KvCache, Rope};

/// RMSNorm with the statistics in f32 (candle's fused kernel).
#[derive(Debug, Clone)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    pub(crate) fn load(w: &Weights, role: Role, layer: usize) -> Result<Self> {
        Ok(RmsNorm {
            weight: w.vector(role, layer, false)?,
            eps: w.cfg.rms_norm_eps as f32,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::rms_norm(
            &x.contiguous()?,
            &self.weight,
            self.eps,
        )?)
    }
}

#[derive(Debug, Clone)]
pub struct Block {
    attn_norm: RmsNorm,
    attn: Attention,
    ffn_norm: RmsNorm,
    mlp: Mlp,
}

impl Block {
    pub(crate) fn load(w: &Weights, layer: usize) -> Result<Self> {
        Ok(Block {
            attn_norm: RmsNorm::load(w, Role::AttnNorm, layer)?,
            attn: Attention::load(w, layer)?,
            ffn_norm: RmsNorm::load(w, Role::FfnNorm, layer)?,
            mlp: Mlp::load(w, layer)?,
        })
    }

    pub fn attn(&self) -> &Attention {
        &self.attn
    }

    pub fn attn_norm(&self) -> &RmsNorm {
        &self.attn_norm
    }

    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        x: &Tensor,
        positions: &[i64],
        rope: &Rope,
        cos_sin: &(Tensor, Tensor),
        cache: &mut KvCache,
        layer: usize,
        observe: Option<&Observe>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (a, obs) = self.attn.forward(
            &self.attn_norm.forward(x)?,
            positions,
            rope,
            cos_sin,
            cache,
            layer,
            observe,
        )?;
        let h = (x + a)?;
        let out = (&h + self.mlp.forward(&self.ffn_norm.forward(&h)?)?)?;
        Ok((out, obs))
    }
}
