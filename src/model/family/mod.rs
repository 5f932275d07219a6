//! What each family changes over the shared block code (`block.rs`,
//! `attention.rs`, `mlp.rs`): its config keys and, where they differ from
//! llama's, its tensor names. One file per family; the forward is shared.

pub(crate) mod gemma3;
pub(crate) mod gpt_neox;
pub(crate) mod qwen3;

use super::config::Arch;
use super::role::Role;

/// The family's Hugging Face tensor name for `role`, where it is not llama's.
pub(crate) fn hf_name(arch: Arch, role: Role, layer: usize, bias: bool) -> Option<String> {
    match arch {
        Arch::GptNeox => Some(gpt_neox::hf_name(role, layer, bias)),
        Arch::Gemma3 => gemma3::hf_name(role, layer, bias),
        _ => None,
    }
}
