//! CPU kernels under the model: quantized and dense matmuls, the fused
//! attention paths, softmax, and the SIMD detection that picks among them.
//! They know nothing of the model; `crate::model` calls them on raw slices.
//! A CUDA backend would sit beside this module.

pub mod attn_partial;
pub mod avx512_vnni;
pub mod block_matmul;
pub mod decode_attn;
#[cfg(target_arch = "x86_64")]
pub mod decode_attn_avx2;
pub mod host_matmul;
pub mod kv_elem;
pub mod matvec;
pub mod out_ptr;
pub mod prefill_attn;
pub mod q4k;
pub mod q6k;
pub mod qblock;
pub mod qkernel;
pub mod qmatmul;
pub mod qpack;
pub mod simd_level;
pub mod softmax;
#[cfg(test)]
pub(crate) mod test_data;
#[cfg(target_arch = "x86_64")]
pub mod tiled_attn;
pub mod visible;
