//! Qwen3: Qwen2's layout without the q/k/v biases (unless `attention_bias`,
//! which then covers o_proj too), plus QK-norm: a per-head RMSNorm of q and
//! k (`self_attn.q_norm` / `k_norm`, weights `[head_dim]`) before RoPE. Its
//! GGUF (`qwen3`) keeps HF's rotary layout, like qwen2.

use crate::error::Result;
use crate::model::config::{HfKeys, ModelConfig};

pub(crate) fn hf_config(cfg: &mut ModelConfig, keys: &HfKeys) -> Result<()> {
    cfg.attn_bias = keys.flag("attention_bias", false);
    cfg.attn_out_bias = cfg.attn_bias;
    cfg.family.qk_norm = true;
    Ok(())
}

pub(crate) fn gguf_config(cfg: &mut ModelConfig) {
    cfg.family.qk_norm = true;
}
