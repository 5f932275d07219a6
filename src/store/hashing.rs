//! Canonical JSON keys and file digests.

use crate::error::{IoContext, Result};
use std::io::Read;
use std::path::Path;

/// Canonical form: serde_json's default map is a BTreeMap, so keys are sorted
/// and the compact serialization is stable.
pub fn canonical_json(v: &serde_json::Value) -> String {
    serde_json::to_string(v).expect("a serde_json::Value always serializes")
}

pub fn key_of(preimage: &serde_json::Value) -> String {
    blake3::hash(canonical_json(preimage).as_bytes())
        .to_hex()
        .to_string()
}

/// blake3 of a file's payload; `.zst` files are hashed after decompression so
/// the digest names the data, not the compressor's settings.
pub fn file_blake3(path: &Path) -> Result<String> {
    let file = std::fs::File::open(path).ctx(format!("open {}", path.display()))?;
    let mut hasher = blake3::Hasher::new();
    let mut reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "zst") {
        Box::new(zstd::Decoder::new(file).ctx(format!("zstd {}", path.display()))?)
    } else {
        Box::new(std::io::BufReader::with_capacity(1 << 20, file))
    };
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader
            .read(&mut buf)
            .ctx(format!("read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// The preimage of a stage object: everything that determines its output.
/// One definition for the runner and for anything that computes a stage's
/// object outside a pipeline (`kvlab fetch`), so both reach the same key.
pub fn stage_preimage(
    kind: &str,
    version: u32,
    params: serde_json::Value,
    input_digests: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    serde_json::json!({
        "schema": super::STORE_SCHEMA,
        "kind": kind,
        "version": version,
        "params": params,
        "inputs": input_digests,
        // Always "cpu", as every key before devices existed had it: the
        // device a model stage runs on is its `device` parameter (hashed
        // unless cpu), so device-independent stages stay shared by builds.
        "device": "cpu",
    })
}

/// blake3 of token ids as little-endian u32 (`chunks.parquet`'s `ids_blake3`,
/// and how items name the tokens they were computed from).
pub fn ids_blake3(ids: &[u32]) -> String {
    let bytes: Vec<u8> = ids.iter().flat_map(|i| i.to_le_bytes()).collect();
    blake3::hash(&bytes).to_hex().to_string()
}
