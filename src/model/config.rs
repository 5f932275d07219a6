//! Model hyper-parameters, read from GGUF metadata or a Hugging Face
//! `config.json`. One struct serves every supported family; `Family` holds
//! what a family changes over the shared block (norms, QK-norm, residual
//! wiring, rotary width, MLP, per-layer windows and RoPE bases), filled in by
//! the family's own file under `family/`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file;
use serde_json::Value as Json;

use super::family;
use crate::error::{input_err, IoContext, Result};

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

    fn validate(&self, file: &str) -> Result<()> {
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

    /// Reads `general.architecture` and the `<arch>.*` keys. `vocab_size` and
    /// `tie_embeddings` come from the tensor table (token_embd / output).
    pub fn from_gguf(content: &gguf_file::Content, file: &str) -> Result<Self> {
        let md = &content.metadata;
        let arch_s = md
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .ok_or_else(|| input_err(file, "general.architecture", "missing"))?;
        let arch = match arch_s.as_str() {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            "qwen3" => Arch::Qwen3,
            "gemma3" => Arch::Gemma3,
            other => {
                return Err(input_err(
                    file,
                    "general.architecture",
                    format!(
                    "unsupported architecture {other:?} (supported: llama, qwen2, qwen3, gemma3)"
                ),
                ))
            }
        };
        let key = |k: &str| format!("{arch_s}.{k}");
        let get_u = |k: &str| -> Result<usize> {
            let name = key(k);
            let v = md
                .get(&name)
                .ok_or_else(|| input_err(file, &name, "missing"))?;
            v.to_u64()
                .map(|x| x as usize)
                .or_else(|_| v.to_u32().map(|x| x as usize))
                .or_else(|_| v.to_i32().map(|x| x as usize))
                .map_err(|e| input_err(file, &name, e))
        };
        let get_f = |k: &str, default: Option<f64>| -> Result<f64> {
            let name = key(k);
            match md.get(&name) {
                // Shortest decimal of the f32 (1e-5, not 9.99999974e-6), as in HF configs.
                Some(v) => v
                    .to_f32()
                    .map(|x| format!("{x}").parse::<f64>().unwrap_or(x as f64))
                    .or_else(|_| v.to_f64())
                    .map_err(|e| input_err(file, &name, e)),
                None => default.ok_or_else(|| input_err(file, &name, "missing")),
            }
        };
        let hidden_size = get_u("embedding_length")?;
        let n_heads = get_u("attention.head_count")?;
        let n_kv_heads = get_u("attention.head_count_kv").unwrap_or(n_heads);
        let head_dim = get_u("attention.key_length").unwrap_or(hidden_size / n_heads.max(1));
        let embd = content
            .tensor_infos
            .get("token_embd.weight")
            .ok_or_else(|| input_err(file, "token_embd.weight", "missing tensor"))?;
        let vocab_size = match embd.shape.dims() {
            [v, _] => *v,
            d => {
                return Err(input_err(
                    file,
                    "token_embd.weight",
                    format!("expected a 2-D tensor, found shape {d:?}"),
                ))
            }
        };
        let mut cfg = ModelConfig {
            arch,
            vocab_size,
            hidden_size,
            intermediate_size: get_u("feed_forward_length")?,
            n_layers: get_u("block_count")?,
            n_heads,
            n_kv_heads,
            head_dim,
            rope_theta: get_f("rope.freq_base", Some(10_000.0))?,
            rms_norm_eps: get_f("attention.layer_norm_rms_epsilon", None)?,
            max_position: get_u("context_length").unwrap_or(4096),
            sliding_window: None,
            tie_embeddings: !content.tensor_infos.contains_key("output.weight"),
            attn_bias: content.tensor_infos.contains_key("blk.0.attn_q.bias"),
            attn_out_bias: content.tensor_infos.contains_key("blk.0.attn_output.bias"),
            family: Family::default(),
        };
        match arch {
            Arch::Qwen3 => family::qwen3::gguf_config(&mut cfg),
            Arch::Gemma3 => {
                let opt_u = |k: &str| get_u(k).ok();
                family::gemma3::gguf_config(&mut cfg, opt_u)
            }
            _ => {}
        }
        cfg.validate(file)?;
        Ok(cfg)
    }

    pub fn from_hf_json(path: &Path) -> Result<Self> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).ctx(&file)?;
        let j: Json = serde_json::from_str(&text).map_err(|e| input_err(&file, "json", e))?;
        Self::from_hf_value(&j, &file)
    }

    pub fn from_hf_value(j: &Json, file: &str) -> Result<Self> {
        let mt = j
            .get("model_type")
            .and_then(|v| v.as_str())
            .ok_or_else(|| input_err(file, "model_type", "missing"))?;
        let arch = match mt {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            "mistral" => Arch::Mistral,
            "qwen3" => Arch::Qwen3,
            "gpt_neox" => Arch::GptNeox,
            "gemma3_text" => Arch::Gemma3,
            other => {
                return Err(input_err(
                    file,
                    "model_type",
                    format!(
                        "unsupported model_type {other:?} (supported: llama, qwen2, mistral, \
                         qwen3, gpt_neox, gemma3_text)"
                    ),
                ))
            }
        };
        let obj: HashMap<String, Json> = j
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let get_u = |k: &str| -> Result<usize> {
            obj.get(k)
                .and_then(|v| v.as_u64())
                .map(|x| x as usize)
                .ok_or_else(|| input_err(file, k, "missing or not a non-negative integer"))
        };
        let opt_u = |k: &str| obj.get(k).and_then(|v| v.as_u64()).map(|x| x as usize);
        let get_f = |k: &str, d: f64| -> Result<f64> {
            match obj.get(k) {
                None | Some(Json::Null) => Ok(d),
                Some(v) => v.as_f64().ok_or_else(|| input_err(file, k, "not a number")),
            }
        };
        let flag = |k: &str, d: bool| obj.get(k).and_then(|v| v.as_bool()).unwrap_or(d);
        // transformers 5 nests the RoPE settings in `rope_parameters`; 4.x
        // has `rope_theta` and `rope_scaling` at the top level.
        let mut rope_theta = get_f("rope_theta", 10_000.0)?;
        for key in ["rope_scaling", "rope_parameters"] {
            let Some(rp) = obj.get(key).filter(|v| !v.is_null()) else {
                continue;
            };
            // Gemma 3: one entry per layer type, read by family/gemma3.rs.
            if arch == Arch::Gemma3 && rp.get("full_attention").is_some() {
                continue;
            }
            let kind = rp
                .get("rope_type")
                .or_else(|| rp.get("type"))
                .and_then(|v| v.as_str())
                .unwrap_or("default");
            if kind != "default" {
                return Err(input_err(
                    file,
                    key,
                    format!("rope type {kind:?} is not supported (only \"default\")"),
                ));
            }
            if let Some(t) = rp.get("rope_theta").and_then(|v| v.as_f64()) {
                rope_theta = t;
            }
        }
        if flag("mlp_bias", false) {
            return Err(input_err(file, "mlp_bias", "MLP biases are not supported"));
        }
        let hidden_size = get_u("hidden_size")?;
        let n_heads = get_u("num_attention_heads")?;
        let sliding_window = match arch {
            Arch::Mistral => opt_u("sliding_window"),
            Arch::Qwen2 | Arch::Qwen3 if flag("use_sliding_window", false) => {
                return Err(input_err(
                    file,
                    "use_sliding_window",
                    "Qwen2 per-layer sliding windows are not supported",
                ))
            }
            _ => None,
        };
        let llama_bias = arch == Arch::Llama && flag("attention_bias", false);
        let mut cfg = ModelConfig {
            arch,
            vocab_size: get_u("vocab_size")?,
            hidden_size,
            intermediate_size: get_u("intermediate_size")?,
            n_layers: get_u("num_hidden_layers")?,
            n_heads,
            n_kv_heads: opt_u("num_key_value_heads").unwrap_or(n_heads),
            head_dim: opt_u("head_dim").unwrap_or(hidden_size / n_heads.max(1)),
            rope_theta,
            rms_norm_eps: get_f("rms_norm_eps", 1e-6)?,
            max_position: opt_u("max_position_embeddings").unwrap_or(4096),
            sliding_window,
            tie_embeddings: flag("tie_word_embeddings", false),
            attn_bias: arch == Arch::Qwen2 || llama_bias,
            attn_out_bias: llama_bias,
            family: Family::default(),
        };
        let keys = HfKeys { obj: &obj, file };
        match arch {
            Arch::Qwen3 => family::qwen3::hf_config(&mut cfg, &keys)?,
            Arch::GptNeox => family::gpt_neox::hf_config(&mut cfg, &keys)?,
            Arch::Gemma3 => family::gemma3::hf_config(&mut cfg, &keys)?,
            _ => {}
        }
        cfg.validate(file)?;
        Ok(cfg)
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
