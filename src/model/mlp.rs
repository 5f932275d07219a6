//! SwiGLU feed-forward: `down(silu(gate(x)) * up(x))`.

use candle_core::Tensor;

use super::linear::{FusedLinear, Linear};
use super::role::Role;
use super::weights::Weights;
use crate::error::Result;

#[derive(Debug, Clone)]
pub struct Mlp {
    gate_up: FusedLinear,
    down: Linear,
}

impl Mlp {
    pub(crate) fn load(w: &Weights, layer: usize) -> Result<Self> {
        Ok(Mlp {
            gate_up: FusedLinear::new(vec![
                w.linear(Role::Gate, layer, false)?,
                w.linear(Role::Up, layer, false)?,
            ])?,
            down: w.linear(Role::Down, layer, false)?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gu = self.gate_up.forward(x)?;
        let h = (candle_nn::ops::silu(&gu[0])? * &gu[1])?;
        self.down.forward(&h)
    }
}
