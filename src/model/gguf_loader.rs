//! GGUF weights via candle's `gguf_file`. Every tensor's extent is checked
//! against the file length up front (a truncated file names the first tensor
//! that does not fit) and every shape against the config.
//!
//! llama.cpp's converter permutes the rows of llama Q and K so that rotary
//! pairs are interleaved (x[2i], x[2i+1]); we undo that here so one
//! half-split RoPE serves both loaders and the cached K matches HF's. Rows
//! are quantized independently, so permuting whole rows of raw blocks is
//! exact for every quantization format.

use std::borrow::Cow;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Mutex;

use candle_core::quantized::{gguf_file, QStorage, QTensor};
use candle_core::{Device, Tensor};

use super::config::{Arch, ModelConfig};
use super::raw::Raw;
use super::role::Role;
use crate::error::{input_err, IoContext, Result};

pub(crate) struct GgufSource {
    file: String,
    content: gguf_file::Content,
    reader: Mutex<BufReader<File>>,
}

fn name(role: Role, layer: usize, bias: bool) -> String {
    let suffix = if bias { "bias" } else { "weight" };
    let blk = |s: &str| format!("blk.{layer}.{s}.{suffix}");
    match role {
        Role::Embed => format!("token_embd.{suffix}"),
        Role::OutNorm => format!("output_norm.{suffix}"),
        Role::LmHead => format!("output.{suffix}"),
        Role::AttnNorm => blk("attn_norm"),
        Role::Q => blk("attn_q"),
        Role::K => blk("attn_k"),
        Role::V => blk("attn_v"),
        Role::O => blk("attn_output"),
        Role::FfnNorm => blk("ffn_norm"),
        Role::QNorm => blk("attn_q_norm"),
        Role::KNorm => blk("attn_k_norm"),
        Role::PostAttnNorm => blk("post_attention_norm"),
        Role::PostFfnNorm => blk("post_ffw_norm"),
        Role::Gate => blk("ffn_gate"),
        Role::Up => blk("ffn_up"),
        Role::Down => blk("ffn_down"),
    }
}

/// Maps HF row order to llama.cpp's: HF row `h*hd + j*hd/2 + i` is stored at
/// GGUF row `h*hd + 2i + j`. Returns, for each HF row, its GGUF row.
fn unpermute_rows(n_heads: usize, head_dim: usize) -> Vec<usize> {
    let half = head_dim / 2;
    let mut src = Vec::with_capacity(n_heads * head_dim);
    for h in 0..n_heads {
        for j in 0..2 {
            for i in 0..half {
                src.push(h * head_dim + 2 * i + j);
            }
        }
    }
    src
}

fn permute_qtensor(q: &QTensor, rows: &[usize]) -> Result<QTensor> {
    let (n, k) = q.shape().dims2()?;
    let data = q.data()?;
    let row_bytes = data.len() / n;
    let mut out = Vec::with_capacity(data.len());
    for &r in rows {
        out.extend_from_slice(&data[r * row_bytes..(r + 1) * row_bytes]);
    }
    let st = QStorage::from_data(Cow::Owned(out), &q.device(), q.dtype())?;
    Ok(QTensor::new(st, (n, k))?)
}

impl GgufSource {
    pub fn open(path: &Path) -> Result<(Self, ModelConfig)> {
        let file = path.display().to_string();
        super::gguf_check::check(path, &file, "header")?;
        let f = File::open(path).ctx(&file)?;
        let file_len = f.metadata().ctx(&file)?.len();
        let mut reader = BufReader::new(f);
        let content = gguf_file::Content::read(&mut reader)
            .map_err(|e| input_err(&file, "header", format!("not a readable GGUF file: {e}")))?;
        let mut infos: Vec<_> = content.tensor_infos.iter().collect();
        infos.sort_by_key(|(_, i)| i.offset);
        for (tname, info) in infos {
            let elems = info.shape.elem_count();
            let bs = info.ggml_dtype.block_size();
            if elems % bs != 0 {
                return Err(input_err(
                    &file,
                    tname,
                    format!("{elems} elements, not a multiple of the block size {bs}"),
                ));
            }
            let size = ((elems / bs) as u64).checked_mul(info.ggml_dtype.type_size() as u64);
            let end = size
                .and_then(|s| s.checked_add(info.offset))
                .and_then(|s| s.checked_add(content.tensor_data_offset))
                .unwrap_or(u64::MAX);
            if end > file_len {
                return Err(input_err(
                    &file,
                    tname,
                    format!(
                        "file truncated: tensor data ends at byte {end}, file has {file_len} bytes"
                    ),
                ));
            }
        }
        let cfg = ModelConfig::from_gguf(&content, &file)?;
        Ok((
            GgufSource {
                file,
                content,
                reader: Mutex::new(reader),
            },
            cfg,
        ))
    }

    pub fn has(&self, role: Role, layer: usize, bias: bool) -> bool {
        self.content
            .tensor_infos
            .contains_key(&name(role, layer, bias))
    }

    pub fn get(
        &self,
        role: Role,
        layer: usize,
        bias: bool,
        expected: &[usize],
        cfg: &ModelConfig,
    ) -> Result<Raw> {
        let tname = name(role, layer, bias);
        let info = self
            .content
            .tensor_infos
            .get(&tname)
            .ok_or_else(|| input_err(&self.file, &tname, "missing tensor"))?;
        if info.shape.dims() != expected {
            return Err(input_err(
                &self.file,
                &tname,
                format!("expected shape {expected:?}, found {:?}", info.shape.dims()),
            ));
        }
        let q = {
            let mut r = self
                .reader
                .lock()
                .map_err(|_| input_err(&self.file, &tname, "reader poisoned"))?;
            self.content
                .tensor(&mut *r, &tname, &Device::Cpu)
                .map_err(|e| input_err(&self.file, &tname, e))?
        };
        // Only llama-arch GGUFs carry the rotary permutation (qwen2 uses HF's layout).
        let heads = match (cfg.arch, role) {
            (Arch::Llama | Arch::Mistral, Role::Q) => Some(cfg.n_heads),
            (Arch::Llama | Arch::Mistral, Role::K) => Some(cfg.n_kv_heads),
            _ => None,
        };
        let Some(heads) = heads else {
            return Ok(Raw::Quant(q));
        };
        let rows = unpermute_rows(heads, cfg.head_dim);
        if bias {
            let t = q.dequantize(&Device::Cpu)?;
            let idx = Tensor::from_vec(
                rows.iter().map(|&r| r as u32).collect::<Vec<_>>(),
                rows.len(),
                &Device::Cpu,
            )?;
            return Ok(Raw::Dense(t.index_select(&idx, 0)?));
        }
        Ok(Raw::Quant(permute_qtensor(&q, &rows)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_inverts_llama_cpp_permutation() {
        // llama.cpp: w.reshape(n_head, 2, hd/2, ..).swapaxes(1, 2): GGUF row
        // (h, i, j) holds HF row (h, j, i).
        let (nh, hd) = (2, 6);
        let mut gguf_of_hf = vec![0; nh * hd];
        for h in 0..nh {
            for i in 0..hd / 2 {
                for j in 0..2 {
                    gguf_of_hf[h * hd + j * hd / 2 + i] = h * hd + i * 2 + j;
                }
            }
        }
        assert_eq!(unpermute_rows(nh, hd), gguf_of_hf);
    }
}
