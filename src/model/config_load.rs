//! Reading a `ModelConfig` from GGUF metadata or a Hugging Face
//! `config.json`: the shared keys here, each family's own in `family/`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file;
use serde_json::Value as Json;

use super::config::*;
use super::family;
use crate::error::{input_err, IoContext, Result};

impl ModelConfig {
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
