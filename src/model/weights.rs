//! Format-neutral weight access. The two loaders (GGUF, safetensors) map a
//! logical `Role` (role.rs) to their own tensor names and return a `Raw`
//! tensor (raw.rs) with its shape already checked; this file turns raws into
//! `Linear`s, norms and the embedding according to `LoadOptions`.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};

use super::config::ModelConfig;
use super::gguf_loader::GgufSource;
use super::linear::{is_slow_quant, requant_q8, Embedding, Linear, Weight};
use super::raw::Raw;
use super::role::Role;
use super::safetensors_loader::StSource;
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Dtype {
    F32,
    F16,
    BF16,
}

impl Dtype {
    pub fn dtype(self) -> DType {
        match self {
            Dtype::F32 => DType::F32,
            Dtype::F16 => DType::F16,
            Dtype::BF16 => DType::BF16,
        }
    }
}

/// How weights are materialised.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Activations, dense weights and the KV cache.
    pub dtype: Dtype,
    /// Keep projection weights in GGUF blocks (safetensors weights are
    /// quantized to Q8_0); otherwise dequantize everything to `dtype`.
    pub quantized: bool,
    /// With `quantized`: re-quantize Q5_0, Q5_1, Q4_K and Q6_K to Q8_0
    /// (see `linear::is_slow_quant`); off unless `KVLAB_REQUANT_Q8` is set,
    /// for before/after measurements.
    pub requant_q8: bool,
    /// KV-cache storage; `None`: the activation dtype.
    pub kv_dtype: Option<Dtype>,
    pub device: Device,
}

impl LoadOptions {
    /// Everything dequantized to f32: the reference path.
    pub fn f32() -> Self {
        LoadOptions {
            dtype: Dtype::F32,
            quantized: false,
            requant_q8: false,
            kv_dtype: None,
            device: Device::Cpu,
        }
    }

    /// The fast CPU path: quantized projections, f32 activations, an f16
    /// KV cache (llama.cpp's default too: decode at long contexts streams
    /// the cache, and f16 halves it).
    pub fn quantized() -> Self {
        LoadOptions {
            dtype: Dtype::F32,
            quantized: true,
            requant_q8: std::env::var_os("KVLAB_REQUANT_Q8").is_some(),
            kv_dtype: Some(Dtype::F16),
            device: Device::Cpu,
        }
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self::quantized()
    }
}

pub(crate) enum Source {
    Gguf(GgufSource),
    St(StSource),
}

/// Expected shape of a role's weight (or bias when `bias`).
pub(crate) fn expected_shape(cfg: &ModelConfig, role: Role, bias: bool) -> Vec<usize> {
    let (h, hd) = (cfg.hidden_size, cfg.head_dim);
    let (q, kv, ff, v) = (
        cfg.n_heads * hd,
        cfg.n_kv_heads * hd,
        cfg.intermediate_size,
        cfg.vocab_size,
    );
    let (out, inp) = match role {
        Role::Embed | Role::LmHead => (v, h),
        Role::OutNorm | Role::AttnNorm | Role::FfnNorm | Role::PostAttnNorm | Role::PostFfnNorm => {
            return vec![h]
        }
        Role::QNorm | Role::KNorm => return vec![hd],
        Role::Q => (q, h),
        Role::K | Role::V => (kv, h),
        Role::O => (h, q),
        Role::Gate | Role::Up => (ff, h),
        Role::Down => (h, ff),
    };
    if bias {
        vec![out]
    } else {
        vec![out, inp]
    }
}

pub(crate) struct Weights<'a> {
    pub src: &'a Source,
    pub cfg: &'a ModelConfig,
    pub opts: &'a LoadOptions,
}

impl Weights<'_> {
    fn raw(&self, role: Role, layer: usize, bias: bool) -> Result<Raw> {
        let shape = expected_shape(self.cfg, role, bias);
        match self.src {
            Source::Gguf(g) => g.get(role, layer, bias, &shape, self.cfg),
            Source::St(s) => s.get(role, layer, bias, &shape, self.cfg),
        }
    }

    fn has(&self, role: Role, layer: usize, bias: bool) -> bool {
        match self.src {
            Source::Gguf(g) => g.has(role, layer, bias),
            Source::St(s) => s.has(role, layer, bias, self.cfg),
        }
    }

    /// Converted on the host, then moved: a bf16 upload is half an f32 one.
    fn dense(&self, raw: Raw) -> Result<Tensor> {
        let dt = self.opts.dtype.dtype();
        let t = match raw {
            Raw::Dense(t) => t,
            Raw::Quant(q) => q.dequantize(&Device::Cpu)?,
        };
        Ok(t.to_dtype(dt)?.to_device(&self.opts.device)?)
    }

    /// A norm weight or bias vector, dense in the activation dtype.
    pub fn vector(&self, role: Role, layer: usize, bias: bool) -> Result<Tensor> {
        let raw = self.raw(role, layer, bias)?;
        self.dense(raw)
    }

    fn quant(&self, raw: Raw) -> Result<Weight> {
        let q = match raw {
            Raw::Quant(q)
                if matches!(q.dtype(), GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16) =>
            {
                return Ok(Weight::Dense(self.dense(Raw::Quant(q))?))
            }
            Raw::Quant(q) if self.opts.requant_q8 && is_slow_quant(q.dtype()) => requant_q8(&q)?,
            Raw::Quant(q) => q,
            Raw::Dense(t) => {
                let k = t.dims().last().copied().unwrap_or(0);
                if k % 32 != 0 {
                    return Ok(Weight::Dense(self.dense(Raw::Dense(t))?));
                }
                QTensor::quantize(&t.to_dtype(DType::F32)?, GgmlDType::Q8_0)?
            }
        };
        Ok(Weight::Quant(Arc::new(q)))
    }

    fn weight(&self, raw: Raw) -> Result<Weight> {
        // kvlab's quantized kernels are CPU code: dense weights elsewhere.
        if self.opts.quantized && self.opts.device.is_cpu() {
            self.quant(raw)
        } else {
            Ok(Weight::Dense(self.dense(raw)?))
        }
    }

    /// A projection with its bias when `with_bias`.
    pub fn linear(&self, role: Role, layer: usize, with_bias: bool) -> Result<Linear> {
        let w = self.weight(self.raw(role, layer, false)?)?;
        let b = if with_bias {
            Some(self.vector(role, layer, true)?)
        } else {
            None
        };
        Linear::new(w, b)
    }

    pub fn embedding(&self) -> Result<Embedding> {
        let raw = self.raw(Role::Embed, 0, false)?;
        Ok(match self.weight(raw)? {
            Weight::Dense(t) => Embedding::Dense(t),
            Weight::Quant(q) => Embedding::Quant(q),
        })
    }

    /// The LM head: its own weight, or the embedding when tied (or absent).
    pub fn lm_head(&self, embed: &Embedding) -> Result<Linear> {
        if self.cfg.tie_embeddings || !self.has(Role::LmHead, 0, false) {
            embed.as_linear()
        } else {
            self.linear(Role::LmHead, 0, false)
        }
    }
}
