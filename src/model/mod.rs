//! kvlab's own transformer forward on candle ops, with an owned KV cache.
//! Families: Llama (SmolLM2), Qwen2, Mistral, Qwen3, GPT-NeoX (Pythia),
//! Gemma 3 (differences per family in `family/`). Loaders: GGUF and HF
//! safetensors. See `transformer::Model::forward` for the contract. The
//! kernels it runs on live in `crate::cpu`.

pub mod attention;
pub mod block;
pub mod config;
mod config_load;
pub(crate) mod family;
pub(crate) mod gguf_check;
pub(crate) mod gguf_loader;
pub mod linear;
pub(crate) mod mask;
pub mod mlp;
pub mod norm;
pub(crate) mod raw;
pub(crate) mod role;
pub(crate) mod safetensors_loader;
#[cfg(test)]
mod tests_mutation;
#[cfg(test)]
mod tests_mutation_real;
#[cfg(test)]
mod tests_quant_greedy;
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
