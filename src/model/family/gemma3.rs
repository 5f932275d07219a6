//! Gemma 3: embeddings scaled by sqrt(hidden); RMSNorm by (1 + w) (HF stores
//! w; llama.cpp's converter stores 1 + w, so the GGUF path uses w as is);
//! norms before and after attention and the MLP; QK-norm; scores scaled by
//! `query_pre_attn_scalar`^-1/2; a GELU-tanh gated MLP; local layers (window
//! `sliding_window`, base `rope_local_base_freq`) interleaved with global
//! ones (base `rope_theta`) per `layer_types` or `sliding_window_pattern`;
//! tied embeddings.

use crate::error::Result;
use crate::model::config::{HfKeys, LayerAttn, MlpKind, ModelConfig};
use crate::model::role::Role;

/// The family flags both loaders share.
fn common(cfg: &mut ModelConfig) {
    let f = &mut cfg.family;
    f.qk_norm = true;
    f.post_norms = true;
    f.mlp = MlpKind::GeluTanhGated;
    f.embed_scale = Some((cfg.hidden_size as f64).sqrt());
}

/// Local/global layers: layer i is global when `(i + 1) % pattern == 0`.
fn pattern_layers(
    n: usize,
    pattern: usize,
    window: Option<usize>,
    local: f64,
    global: f64,
) -> Vec<LayerAttn> {
    (0..n)
        .map(|i| {
            if pattern > 0 && (i + 1) % pattern == 0 {
                LayerAttn {
                    window: None,
                    rope_theta: global,
                }
            } else {
                LayerAttn {
                    window,
                    rope_theta: local,
                }
            }
        })
        .collect()
}

pub(crate) fn hf_config(cfg: &mut ModelConfig, keys: &HfKeys) -> Result<()> {
    let act = keys
        .str("hidden_activation")
        .or_else(|| keys.str("hidden_act"))
        .unwrap_or("gelu_pytorch_tanh");
    if act != "gelu_pytorch_tanh" {
        return Err(keys.err("hidden_activation", format!("{act:?} is not supported")));
    }
    for k in ["final_logit_softcapping", "attn_logit_softcapping"] {
        if keys.get(k).is_some() {
            return Err(keys.err(k, "logit soft-capping is not supported"));
        }
    }
    if keys.flag("use_bidirectional_attention", false) {
        return Err(keys.err("use_bidirectional_attention", "not supported"));
    }
    common(cfg);
    cfg.family.norm_plus_one = true;
    cfg.tie_embeddings = keys.flag("tie_word_embeddings", true);
    let qpas = keys.opt_f("query_pre_attn_scalar")?.unwrap_or(256.0);
    cfg.family.query_scale = Some(1.0 / qpas.sqrt());
    // transformers 5: rope_parameters per layer type; 4.x: top-level keys.
    let mut global = keys.opt_f("rope_theta")?.unwrap_or(1_000_000.0);
    let mut local = keys.opt_f("rope_local_base_freq")?.unwrap_or(10_000.0);
    if let Some(rp) = keys
        .get("rope_parameters")
        .filter(|r| r.get("full_attention").is_some())
    {
        for (kind, theta) in [
            ("full_attention", &mut global),
            ("sliding_attention", &mut local),
        ] {
            let Some(p) = rp.get(kind) else { continue };
            let ty = p
                .get("rope_type")
                .and_then(|v| v.as_str())
                .unwrap_or("default");
            if ty != "default" {
                return Err(keys.err(
                    "rope_parameters",
                    format!("{kind}: rope type {ty:?} is not supported (only \"default\")"),
                ));
            }
            if let Some(t) = p.get("rope_theta").and_then(|v| v.as_f64()) {
                *theta = t;
            }
        }
    }
    cfg.rope_theta = global;
    let window = Some(keys.opt_u("sliding_window").unwrap_or(4096));
    cfg.sliding_window = None;
    let n = cfg.n_layers;
    cfg.family.layers = match keys.get("layer_types").and_then(|v| v.as_array()) {
        Some(types) => types
            .iter()
            .map(|t| match t.as_str() {
                Some("sliding_attention") => Ok(LayerAttn {
                    window,
                    rope_theta: local,
                }),
                Some("full_attention") => Ok(LayerAttn {
                    window: None,
                    rope_theta: global,
                }),
                other => Err(keys.err("layer_types", format!("unknown layer type {other:?}"))),
            })
            .collect::<Result<_>>()?,
        None => {
            let pattern = keys.opt_u("sliding_window_pattern").unwrap_or(6);
            pattern_layers(n, pattern, window, local, global)
        }
    };
    Ok(())
}

/// From `gemma3.*` metadata: llama.cpp fixes the pattern (6) and the local
/// base (10000), and scales scores by 1/sqrt(head_dim).
pub(crate) fn gguf_config(cfg: &mut ModelConfig, opt_u: impl Fn(&str) -> Option<usize>) {
    common(cfg);
    cfg.family.query_scale = Some(1.0 / (cfg.head_dim as f64).sqrt());
    let window = opt_u("attention.sliding_window");
    let pattern = opt_u("attention.sliding_window_pattern").unwrap_or(6);
    cfg.family.layers = pattern_layers(cfg.n_layers, pattern, window, 10_000.0, cfg.rope_theta);
}

pub(crate) fn hf_name(role: Role, layer: usize, bias: bool) -> Option<String> {
    let suffix = if bias { "bias" } else { "weight" };
    match role {
        // Llama's post_attention_layernorm is the pre-MLP norm; Gemma has both.
        Role::FfnNorm => Some(format!(
            "model.layers.{layer}.pre_feedforward_layernorm.{suffix}"
        )),
        _ => None,
    }
}
