//! GPT-NeoX (Pythia): LayerNorm with bias, attention and MLP in parallel
//! off the same input (`use_parallel_residual`), rotary on the first
//! `partial_rotary_factor` (4.x: `rotary_pct`) of each head, one fused QKV
//! projection laid out per head (`[heads, 3, head_dim]` rows), a GELU MLP
//! with biases, and an untied output matrix (`embed_out`).

use candle_core::Tensor;

use crate::error::Result;
use crate::model::config::{Arch, HfKeys, MlpKind, ModelConfig};
use crate::model::role::Role;

pub(crate) fn hf_config(cfg: &mut ModelConfig, keys: &HfKeys) -> Result<()> {
    let act = keys.str("hidden_act").unwrap_or("gelu");
    if act != "gelu" {
        return Err(keys.err(
            "hidden_act",
            format!("{act:?} is not supported (only \"gelu\")"),
        ));
    }
    // transformers 5 moves rotary_pct/rotary_emb_base into rope_parameters.
    let rp = keys
        .get("rope_parameters")
        .or_else(|| keys.get("rope_scaling"));
    let rp_f = |k: &str| rp.and_then(|r| r.get(k)).and_then(|v| v.as_f64());
    let pct = match rp_f("partial_rotary_factor") {
        Some(p) => p,
        None => keys.opt_f("rotary_pct")?.unwrap_or(0.25),
    };
    if rp_f("rope_theta").is_none() {
        if let Some(base) = keys.opt_f("rotary_emb_base")? {
            cfg.rope_theta = base;
        }
    }
    if !(pct > 0.0 && pct <= 1.0) {
        return Err(keys.err("partial_rotary_factor", format!("{pct} is not in (0, 1]")));
    }
    // int(head_size * factor), as transformers truncates.
    cfg.family.rotary_dim = Some((cfg.head_dim as f64 * pct) as usize);
    cfg.rms_norm_eps = keys.opt_f("layer_norm_eps")?.unwrap_or(1e-5);
    cfg.attn_bias = keys.flag("attention_bias", true);
    cfg.attn_out_bias = cfg.attn_bias;
    let f = &mut cfg.family;
    f.layer_norm = true;
    f.parallel_residual = keys.flag("use_parallel_residual", true);
    f.mlp = MlpKind::Gelu;
    f.mlp_bias = true;
    Ok(())
}

pub(crate) fn hf_name(role: Role, layer: usize, bias: bool) -> String {
    let suffix = if bias { "bias" } else { "weight" };
    let l = |s: &str| format!("gpt_neox.layers.{layer}.{s}.{suffix}");
    match role {
        Role::Embed => format!("gpt_neox.embed_in.{suffix}"),
        Role::OutNorm => format!("gpt_neox.final_layer_norm.{suffix}"),
        Role::LmHead => format!("embed_out.{suffix}"),
        Role::AttnNorm => l("input_layernorm"),
        Role::FfnNorm => l("post_attention_layernorm"),
        Role::Q | Role::K | Role::V => l("attention.query_key_value"),
        Role::O => l("attention.dense"),
        Role::Up => l("mlp.dense_h_to_4h"),
        Role::Down => l("mlp.dense_4h_to_h"),
        // No such tensors in this family; a name that is never found.
        Role::Gate | Role::QNorm | Role::KNorm | Role::PostAttnNorm | Role::PostFfnNorm => {
            l("absent")
        }
    }
}

/// Which third of the fused QKV `role` is, for this family.
pub(crate) fn fused_part(arch: Arch, role: Role) -> Option<usize> {
    match (arch, role) {
        (Arch::GptNeox, Role::Q) => Some(0),
        (Arch::GptNeox, Role::K) => Some(1),
        (Arch::GptNeox, Role::V) => Some(2),
        _ => None,
    }
}

/// The fused tensor's shape, given one part's.
pub(crate) fn fused_shape(part_shape: &[usize]) -> Vec<usize> {
    let mut s = part_shape.to_vec();
    s[0] *= 3;
    s
}

/// Part `part` (q, k, v) of a fused `[heads*3*hd, ..]` weight or bias whose
/// rows are grouped per head: `[heads, 3, hd, ..]`.
pub(crate) fn split(fused: &Tensor, part: usize, heads: usize, hd: usize) -> Result<Tensor> {
    let dims = fused.dims().to_vec();
    let rest: Vec<usize> = dims[1..].to_vec();
    let mut grouped = vec![heads, 3, hd];
    grouped.extend(&rest);
    let mut out = vec![heads * hd];
    out.extend(&rest);
    Ok(fused
        .reshape(grouped)?
        .narrow(1, part, 1)?
        .contiguous()?
        .reshape(out)?)
}
