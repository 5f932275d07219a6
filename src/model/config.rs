//! Model hyper-parameters, read from GGUF metadata or a Hugging Face
//! `config.json`. One struct serves every supported family; `Family` holds
//! what a family changes over the shared block (norms, QK-norm, residual
//! wiring, rotary width, MLP, per-layer windows and RoPE bases), filled in by
//! the family's own file under `family/`.

use std::collections::HashMap;

use serde_json::Value as Json;

use crate::error::{input_err, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Arch {
    Llama,
    Qwen2,
    Mistral,
    Qwen3,
    GptNeox,
    Gemma3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum MlpKind {
    /// `down(silu(gate(x)) * up(x))`.
    #[default]
    SwiGlu,
    /// `down(gelu_tanh(gate(x)) * up(x))` (Gemma).
    GeluTanhGated,
    /// `down(gelu(up(x)))`, exact erf GELU (GPT-NeoX).
    Gelu,
}

/// One layer's attention, where layers differ (Gemma 3 local/global).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerAttn {
    pub window: Option<usize>,
    pub rope_theta: f64,
}

/// What a family changes over the shared pre-norm block; the default is
/// llama's.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Family {
    /// LayerNorm with bias instead of RMSNorm (eps: `rms_norm_eps`).
    pub layer_norm: bool,
    /// Norm weights are stored as w and used as 1 + w (Gemma's HF
    /// checkpoints; llama.cpp's converter stores 1 + w in the GGUF).
    pub norm_plus_one: bool,
    /// Per-head RMSNorm of q and k before RoPE.
    pub qk_norm: bool,
    /// Norms after attention and after the MLP too (Gemma's sandwich).
    pub post_norms: bool,
    /// `x + attn(n1(x)) + mlp(n2(x))` (GPT-NeoX `use_parallel_residual`).
    pub parallel_residual: bool,
    /// Rotate only the first dims of each head (partial rotary).
    pub rotary_dim: Option<usize>,
    pub mlp: MlpKind,
    /// Biases on the MLP projections.
    pub mlp_bias: bool,
    /// Embeddings multiplied by this (Gemma: sqrt(hidden)).
    pub embed_scale: Option<f64>,
    /// Attention score scale; None: 1/sqrt(head_dim).
    pub query_scale: Option<f64>,
    /// Per-layer window and RoPE base; empty: every layer has
    /// `sliding_window` and `rope_theta`.
    pub layers: Vec<LayerAttn>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelConfig {
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    pub max_position: usize,
    /// Key j is visible to query i only if `q_pos - k_pos < window`.
    pub sliding_window: Option<usize>,
    pub tie_embeddings: bool,
    /// Biases on the q/k/v projections (Qwen2; Llama with `attention_bias`).
    pub attn_bias: bool,
    /// Bias on the output projection (Llama with `attention_bias`, GPT-NeoX).
    pub attn_out_bias: bool,
    #[serde(default)]
    pub family: Family,
}

impl ModelConfig {
    /// Query heads per KV head.
    pub fn n_rep(&self) -> usize {
        self.n_heads / self.n_kv_heads
    }

    /// Layer `l`'s sliding window.
    pub fn layer_window(&self, l: usize) -> Option<usize> {
        match self.family.layers.get(l) {
            Some(a) => a.window,
            None => self.sliding_window,
        }
    }

    /// Layer `l`'s RoPE base.
    pub fn layer_theta(&self, l: usize) -> f64 {
        self.family
            .layers
            .get(l)
            .map_or(self.rope_theta, |a| a.rope_theta)
    }

    /// Rotated dims per head.
    pub fn rotary_dim(&self) -> usize {
        self.family.rotary_dim.unwrap_or(self.head_dim)
    }

    pub(crate) fn validate(&self, file: &str) -> Result<()> {
        let bad = |field: &str, msg: String| Err(input_err(file, field, msg));
        if self.n_heads == 0
            || self.n_kv_heads == 0
            || !self.n_heads.is_multiple_of(self.n_kv_heads)
        {
            return bad(
                "n_kv_heads",
                format!(
                    "{} query heads are not a multiple of {} KV heads",
                    self.n_heads, self.n_kv_heads
                ),
            );
        }
        if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) {
            return bad(
                "head_dim",
                format!("head_dim {} must be even", self.head_dim),
            );
        }
        let rd = self.rotary_dim();
        if rd == 0 || rd > self.head_dim || !rd.is_multiple_of(2) {
            return bad(
                "rotary_dim",
                format!("{rd} rotary dims for head_dim {}", self.head_dim),
            );
        }
        if !self.family.layers.is_empty() && self.family.layers.len() != self.n_layers {
            return bad(
                "layer_types",
                format!(
                    "{} layer types for {} layers",
                    self.family.layers.len(),
                    self.n_layers
                ),
            );
        }
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("n_layers", self.n_layers),
        ] {
            if v == 0 {
                return bad(name, "must be positive".into());
            }
        }
        Ok(())
    }
}

/// Typed access to a `config.json` object, for the family files.
pub(crate) struct HfKeys<'a> {
    pub obj: &'a HashMap<String, Json>,
    pub file: &'a str,
}

impl HfKeys<'_> {
    pub fn get(&self, k: &str) -> Option<&Json> {
        self.obj.get(k).filter(|v| !v.is_null())
    }

    pub fn opt_u(&self, k: &str) -> Option<usize> {
        self.get(k).and_then(|v| v.as_u64()).map(|x| x as usize)
    }

    pub fn opt_f(&self, k: &str) -> Result<Option<f64>> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| input_err(self.file, k, "not a number")),
        }
    }

    pub fn flag(&self, k: &str, d: bool) -> bool {
        self.get(k).and_then(|v| v.as_bool()).unwrap_or(d)
    }

    pub fn str(&self, k: &str) -> Option<&str> {
        self.get(k).and_then(|v| v.as_str())
    }

    pub fn err(&self, k: &str, msg: impl std::fmt::Display) -> crate::error::Error {
        input_err(self.file, k, msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hf_config_parses_and_rejects_unknown_arch() {
        let j: Json = serde_json::json!({
            "model_type": "mistral", "vocab_size": 100, "hidden_size": 64,
            "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "rope_theta": 10000.0, "rms_norm_eps": 1e-5,
            "max_position_embeddings": 256, "sliding_window": 8, "tie_word_embeddings": false
        });
        let c = ModelConfig::from_hf_value(&j, "config.json").unwrap();
        assert_eq!(c.arch, Arch::Mistral);
        assert_eq!(c.head_dim, 16);
        assert_eq!(c.n_rep(), 2);
        assert_eq!(c.sliding_window, Some(8));
        assert!(!c.attn_bias);

        let bad = serde_json::json!({"model_type": "gpt2"});
        let e = ModelConfig::from_hf_value(&bad, "config.json").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("model_type"), "{e}");
    }

    fn base(mt: &str) -> serde_json::Map<String, Json> {
        let j = serde_json::json!({
            "model_type": mt, "vocab_size": 100, "hidden_size": 64,
            "intermediate_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
        });
        j.as_object().unwrap().clone()
    }

    #[test]
    fn family_configs_parse_and_reject_what_is_unsupported() {
        // Gemma 3: pattern 2 -> layers 1 and 3 global; defaults for the rest.
        let mut g = base("gemma3_text");
        g.insert("sliding_window_pattern".into(), 2.into());
        g.insert("sliding_window".into(), 16.into());
        let c = ModelConfig::from_hf_value(&Json::Object(g.clone()), "c.json").unwrap();
        assert!(c.tie_embeddings && c.family.norm_plus_one && c.family.post_norms);
        assert_eq!(c.layer_window(0), Some(16));
        assert_eq!(c.layer_window(1), None);
        assert_eq!(
            (c.layer_theta(0), c.layer_theta(1)),
            (10_000.0, 1_000_000.0)
        );
        assert_eq!(c.family.query_scale, Some(1.0 / 16.0));
        g.insert("final_logit_softcapping".into(), 30.0.into());
        let e = ModelConfig::from_hf_value(&Json::Object(g), "c.json").unwrap_err();
        assert!(e.to_string().contains("final_logit_softcapping"), "{e}");
        // GPT-NeoX 4.x keys: rotary_pct, rotary_emb_base.
        let mut n = base("gpt_neox");
        n.insert("rotary_pct".into(), 0.25.into());
        n.insert("rotary_emb_base".into(), 5000.into());
        let c = ModelConfig::from_hf_value(&Json::Object(n.clone()), "c.json").unwrap();
        assert_eq!((c.rotary_dim(), c.rope_theta), (4, 5000.0));
        assert!(c.family.layer_norm && c.family.parallel_residual && c.attn_bias);
        n.insert("hidden_act".into(), "relu".into());
        assert!(ModelConfig::from_hf_value(&Json::Object(n), "c.json").is_err());
        let q = ModelConfig::from_hf_value(&Json::Object(base("qwen3")), "c.json").unwrap();
        assert!(q.family.qk_norm && !q.attn_bias);
    }
}
