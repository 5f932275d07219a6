//! KV cache files. The payload is safetensors: tensors `k.<l>`, `v.<l>`
//! `[kv_heads, len, head_dim]` and `pos.<l>` i64 `[kv_heads, len]`; the RoPE
//! parameters travel in its metadata so a loaded cache can still be
//! re-rotated. On disk (`kvlab-kv-2`): a magic line, a JSON header (codec,
//! element size, payload length and blake3) and the payload, transformed by
//! the codec (`kv_codec`) and zstd-compressed. The blake3 is checked on load:
//! a truncated or tampered file is an input error, never a cache. Files
//! without the magic are the older plain `.safetensors.zst`.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use serde::{Deserialize, Serialize};

use super::cache::KvCache;
use super::codec::{decode, encode, Codec};
use super::rope::Rope;
use crate::error::{input_err, IoContext, Result};

const FORMAT: &str = "kvlab-kv-1";
const ZSTD_LEVEL: i32 = 3;
const MAGIC: &[u8] = b"kvlab-kv-2\n";
/// Byte planes: the smallest lossless file for every KV dtype measured on
/// 512 tokens of essay text with SmolLM2 (BENCHMARKS.md, "RAG KV fusion":
/// f16 0.849x raw vs plain 0.918x, planes_delta 0.874x; bf16 0.710x vs
/// 0.781x, 0.727x), and loading stays >= 100x faster than recomputing.
pub const DEFAULT_CODEC: Codec = Codec::Planes;

#[derive(Serialize, Deserialize)]
struct Header {
    codec: Codec,
    elem: usize,
    row: usize,
    raw_len: usize,
    blake3: String,
}

/// Sizes of one saved file.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct FileStats {
    pub raw_bytes: usize,
    pub stored_bytes: usize,
}

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

    /// Writes a file with the default codec.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.save_with(path, DEFAULT_CODEC).map(|_| ())
    }

    /// Writes a `kvlab-kv-2` file with `codec`; returns its sizes.
    pub fn save_with(&self, path: &Path, codec: Codec) -> Result<FileStats> {
        let bytes = self.encode_file(codec)?;
        let raw_bytes = self.nbytes();
        let mut f = std::fs::File::create(path).ctx(path.display())?;
        f.write_all(&bytes).ctx(path.display())?;
        f.sync_all().ctx(path.display())?;
        Ok(FileStats {
            raw_bytes,
            stored_bytes: bytes.len(),
        })
    }

    /// The bytes `save_with` writes.
    pub fn encode_file(&self, codec: Codec) -> Result<Vec<u8>> {
        let payload = self.to_safetensors_bytes()?;
        let elem = self.dtype().size_in_bytes();
        let header = Header {
            codec,
            elem,
            row: self.head_dim(),
            raw_len: payload.len(),
            blake3: blake3::hash(&payload).to_hex().to_string(),
        };
        let body = encode(codec, &payload, elem, self.head_dim());
        let body = zstd::encode_all(&body[..], ZSTD_LEVEL)
            .map_err(|e| crate::error::other(format!("kv zstd: {e}")))?;
        let head = serde_json::to_vec(&header).expect("header serializes");
        let mut out = MAGIC.to_vec();
        out.extend((head.len() as u32).to_le_bytes());
        out.extend(head);
        out.extend(body);
        Ok(out)
    }

    /// Reads a file written by `save`; a corrupt file is an input error.
    pub fn load(path: &Path, device: &Device) -> Result<KvCache> {
        let file = path.display().to_string();
        let raw = std::fs::read(path).ctx(&file)?;
        Self::decode_file(&raw, &file, device)
    }

    pub fn decode_file(raw: &[u8], file: &str, device: &Device) -> Result<KvCache> {
        let Some(rest) = raw.strip_prefix(MAGIC) else {
            let bytes = zstd::decode_all(raw).map_err(|e| input_err(file, "zstd", e))?;
            return Self::from_safetensors_bytes(&bytes, file, device);
        };
        let bad = |field: &str, msg: String| input_err(file, field, msg);
        if rest.len() < 4 {
            return Err(bad("header", "truncated".into()));
        }
        let n = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let (head, body) = rest[4..].split_at(n.min(rest.len() - 4));
        let h: Header = serde_json::from_slice(head).map_err(|e| bad("header", e.to_string()))?;
        let body = zstd::decode_all(body).map_err(|e| bad("zstd", e.to_string()))?;
        if body.len() != h.raw_len || h.elem == 0 || h.row == 0 {
            return Err(bad(
                "raw_len",
                format!("{} bytes decoded, header says {}", body.len(), h.raw_len),
            ));
        }
        let payload = decode(h.codec, &body, h.elem, h.row);
        if blake3::hash(&payload).to_hex().as_str() != h.blake3 {
            return Err(bad(
                "blake3",
                "payload digest mismatch (tampered or corrupt)".into(),
            ));
        }
        Self::from_safetensors_bytes(&payload, file, device)
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
