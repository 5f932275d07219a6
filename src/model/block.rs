//! One decoder block over the shared attention and MLP. Pre-norm by default
//! (`h = x + attn(n1(x)); h + mlp(n2(h))`); a family may add norms of the
//! attention and MLP outputs (Gemma) or run both off `x` (GPT-NeoX's
//! parallel residual). See `config::Family`.

use candle_core::Tensor;

use super::attention::{Attention, Observe};
use super::mlp::Mlp;
pub use super::norm::{Norm, RmsNorm};
use super::role::Role;
use super::weights::Weights;
use crate::error::Result;
use crate::kv::{KvCache, Rope};

#[derive(Debug, Clone)]
pub struct Block {
    attn_norm: Norm,
    attn: Attention,
    ffn_norm: Norm,
    mlp: Mlp,
    post_attn_norm: Option<Norm>,
    post_ffn_norm: Option<Norm>,
    parallel: bool,
}

impl Block {
    pub(crate) fn load(w: &Weights, layer: usize) -> Result<Self> {
        let f = &w.cfg.family;
        let post = |role| -> Result<Option<Norm>> {
            f.post_norms.then(|| Norm::load(w, role, layer)).transpose()
        };
        Ok(Block {
            attn_norm: Norm::load(w, Role::AttnNorm, layer)?,
            attn: Attention::load(w, layer)?,
            ffn_norm: Norm::load(w, Role::FfnNorm, layer)?,
            mlp: Mlp::load(w, layer)?,
            post_attn_norm: post(Role::PostAttnNorm)?,
            post_ffn_norm: post(Role::PostFfnNorm)?,
            parallel: f.parallel_residual,
        })
    }

    pub fn attn(&self) -> &Attention {
        &self.attn
    }

    pub fn attn_norm(&self) -> &RmsNorm {
        &self.attn_norm
    }

    /// `rope` and `cos_sin` are this layer's (layers may differ in base).
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
        let (mut a, obs) = self.attn.forward(
            &self.attn_norm.forward(x)?,
            positions,
            rope,
            cos_sin,
            cache,
            layer,
            observe,
        )?;
        if let Some(n) = &self.post_attn_norm {
            a = n.forward(&a)?;
        }
        let mlp = |h: &Tensor| -> Result<Tensor> {
            let m = self.mlp.forward(&self.ffn_norm.forward(h)?)?;
            match &self.post_ffn_norm {
                Some(n) => n.forward(&m),
                None => Ok(m),
            }
        };
        if self.parallel {
            // transformers: mlp_output + attn_output + hidden_states.
            let out = ((mlp(x)? + a)? + x)?;
            return Ok((out, obs));
        }
        let h = (x + a)?;
        let out = (&h + mlp(&h)?)?;
        Ok((out, obs))
    }
}
