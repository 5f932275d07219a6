//! Feed-forward: SwiGLU `down(silu(gate(x)) * up(x))` by default; Gemma's
//! GELU-tanh gated variant; GPT-NeoX's plain `down(gelu(up(x)))` with biases.

use candle_core::Tensor;

use super::config::MlpKind;
use super::linear::{FusedLinear, Linear};
use super::role::Role;
use super::weights::Weights;
use crate::error::Result;

#[derive(Debug, Clone)]
pub struct Mlp {
    kind: MlpKind,
    /// [gate, up] for the gated kinds, [up] for `Gelu`.
    gate_up: FusedLinear,
    down: Linear,
}

impl Mlp {
    pub(crate) fn load(w: &Weights, layer: usize) -> Result<Self> {
        let (kind, b) = (w.cfg.family.mlp, w.cfg.family.mlp_bias);
        let parts = match kind {
            MlpKind::Gelu => vec![w.linear(Role::Up, layer, b)?],
            _ => vec![
                w.linear(Role::Gate, layer, b)?,
                w.linear(Role::Up, layer, b)?,
            ],
        };
        Ok(Mlp {
            kind,
            gate_up: FusedLinear::new(parts)?,
            down: w.linear(Role::Down, layer, b)?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gu = self.gate_up.forward(x)?;
        let h = match self.kind {
            MlpKind::SwiGlu => (candle_nn::ops::silu(&gu[0])? * &gu[1])?,
            // candle's `gelu` is the tanh approximation (gelu_pytorch_tanh).
            MlpKind::GeluTanhGated => (gu[0].gelu()? * &gu[1])?,
            MlpKind::Gelu => gu[0].gelu_erf()?,
        };
        self.down.forward(&h)
    }
}
