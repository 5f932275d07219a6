//! kvlab's own transformer forward on candle ops, with an owned KV cache.
//! Families: Llama (SmolLM2), Qwen2, Mistral. Loaders: GGUF and HF
//! safetensors. See `transformer::Model::forward` for the contract.

pub mod attention;
pub mod block;
pub mod config;
pub mod decode_attn;
pub(crate) mod gguf_loader;
pub mod kv_elem;
pub mod linear;
pub mod matvec;
pub mod mlp;
pub mod prefill_attn;
pub mod qkernel;
pub mod qmatmul;
pub mod qpack;
pub(crate) mod safetensors_loader;
pub mod simd_level;
pub mod softmax;
#[cfg(target_arch = "x86_64")]
pub mod tiled_attn;
pub mod transformer;
pub mod weights;

#[cfg(test)]
mod real_tests;
#[cfg(test)]
mod tests;

pub use attention::{Observe, Pool};
pub use config::{Arch, ModelConfig};
pub use transformer::{ForwardOpts, ForwardOut, LayerInput, Logits, Model};
pub use weights::{Dtype, LoadOptions};
