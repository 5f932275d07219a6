//! KV cache files: safetensors compressed with zstd (`.safetensors.zst`).
//! Tensors `k.<l>`, `v.<l>` `[kv_heads, len, head_dim]` and `pos.<l>` i64
//! `[kv_heads, len]`; the RoPE parameters travel in the header metadata so a
//! loaded cache can still be re-rotated.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::cache::KvCache;
use super::rope::Rope;
use crate::error::{input_err, IoContext, Result};

const FORMAT: &str = "kvlab-kv-1";
const ZSTD_LEVEL: i32 = 3;

impl KvCache {
    /// Serialises the valid entries (not the spare capacity) to bytes.
    pub fn to_safetensors_bytes(&self) -> Result<Vec<u8>> {
        let mut tensors: Vec<(String, Tensor)> = Vec::new();
        for l in 0..self.n_layers() {
            tensors.push((format!("k.{l}"), self.k(l)?));
            tensors.push((format!("v.{l}"), self.v(l)?));
            let len = self.len(l);
            let pos: Vec<i64> = (0..self.kv_heads())
                .flat_map(|h| self.head_positions(l, h).iter().copied())
                .collect();
            tensors.push((
                format!("pos.{l}"),
                Tensor::from_vec(pos, (self.kv_heads(), len), &Device::Cpu)?,
            ));
        }
        let meta: HashMap<String, String> = [
            ("format", FORMAT.to_string()),
            ("n_layers", self.n_layers().to_string()),
            ("kv_heads", self.kv_heads().to_string()),
            ("head_dim", self.head_dim().to_string()),
            ("rope_theta", format!("{:?}", self.rope().theta())),
            ("dtype", format!("{:?}", self.dtype())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let data: Vec<(String, &Tensor)> = tensors.iter().map(|(n, t)| (n.clone(), t)).collect();
        safetensors::serialize(data, Some(meta))
            .map_err(|e| crate::error::other(format!("kv serialize: {e}")))
    }

    /// Writes a `.safetensors.zst` file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_safetensors_bytes()?;
        let f = std::fs::File::create(path).ctx(path.display())?;
        let mut enc = zstd::Encoder::new(f, ZSTD_LEVEL).ctx(path.display())?;
        enc.write_all(&bytes).ctx(path.display())?;
        let f = enc.finish().ctx(path.display())?;
        f.sync_all().ctx(path.display())?;
        Ok(())
    }

    /// Reads a file written by `save`; a corrupt file is an input error.
    pub fn load(path: &Path, device: &Device) -> Result<KvCache> {
        let file = path.display().to_string();
        let raw = std::fs::read(path).ctx(&file)?;
        let bytes = zstd::decode_all(&raw[..]).map_err(|e| input_err(&file, "zstd", e))?;
        Self::from_safetensors_bytes(&bytes, &file, device)
    }

    pub fn from_safetensors_bytes(bytes: &[u8], file: &str, device: &Device) -> Result<KvCache> {
        let bad = |field: &str, msg: String| input_err(file, field, msg);
        let (_, md) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| bad("header", e.to_string()))?;
        let meta = md.metadata().clone().unwrap_or_default();
        let get = |k: &str| -> Result<&String> {
            meta.get(k)
                .ok_or_else(|| bad(k, "missing from the header metadata".into()))
        };
        if get("format")? != FORMAT {
            return Err(bad("format", format!("expected {FORMAT}")));
        }
        let num =
            |k: &str| -> Result<usize> { get(k)?.parse().map_err(|e| bad(k, format!("{e}"))) };
        let n_layers = num("n_layers")?;
        let kv_heads = num("kv_heads")?;
        let head_dim = num("head_dim")?;
        let theta: f64 = get("rope_theta")?
            .parse()
            .map_err(|e| bad("rope_theta", format!("{e}")))?;
        let st = candle_core::safetensors::load_buffer(bytes, device)
            .map_err(|e| bad("tensors", e.to_string()))?;
        let mut layers = Vec::with_capacity(n_layers);
        let mut dtype = DType::F32;
        for l in 0..n_layers {
            let take = |name: String| -> Result<Tensor> {
                st.get(&name)
                    .cloned()
                    .ok_or_else(|| bad(&name, "missing tensor".into()))
            };
            let k = take(format!("k.{l}"))?;
            let v = take(format!("v.{l}"))?;
            let pos = take(format!("pos.{l}"))?;
            let (h, len, d) = k
                .dims3()
                .map_err(|e| bad(&format!("k.{l}"), e.to_string()))?;
            if (h, d) != (kv_heads, head_dim) || v.dims() != k.dims() || pos.dims() != [h, len] {
                return Err(bad(
                    &format!("k.{l}"),
                    format!(
                        "expected shape [{kv_heads}, len, {head_dim}] for k/v and [{kv_heads}, len] \
                         for pos, found {:?} / {:?} / {:?}",
                        k.dims(),
                        v.dims(),
                        pos.dims()
                    ),
                ));
            }
            dtype = k.dtype();
            let pos = pos
                .to_dtype(DType::I64)?
                .to_vec2::<i64>()
                .map_err(|e| bad(&format!("pos.{l}"), e.to_string()))?;
            layers.push((k, v, pos));
        }
        KvCache::from_parts(layers, dtype, device, Rope::new(head_dim, theta))
    }
}
