//! The manifest written last into every published object: what was computed
//! (the hashed preimage), what it produced, and unhashed provenance.

use serde::{Deserialize, Serialize};

/// Bump when the layout of objects or manifests changes; part of every key.
pub const STORE_SCHEMA: u32 = 1;
pub const MANIFEST: &str = "manifest.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputFile {
    /// Path relative to the object directory.
    pub path: String,
    /// Size on disk.
    pub bytes: u64,
    /// blake3 of the uncompressed payload (a `.zst` file is hashed decompressed).
    pub blake3: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Provenance {
    pub git_rev: String,
    pub host: String,
    pub device: String,
    pub pid: u32,
    pub start_unix_ms: u128,
    pub end_unix_ms: u128,
    pub wall_s: f64,
    pub peak_rss_kb: u64,
    /// What the computation measured about itself (e.g. per-token latencies):
    /// facts of this run, not content, so they stay out of the outputs that
    /// are hashed and compared.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub measurements: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: u32,
    /// Stage kind, or `<kind>/item` for a per-item object.
    pub stage: String,
    pub key: String,
    /// The canonical JSON whose blake3 is `key`.
    pub preimage: serde_json::Value,
    /// Keys of the objects this one was computed from (for gc and tracing).
    pub inputs: Vec<String>,
    /// Keys of per-item objects this artifact is made of (kept alive by it).
    pub items: Vec<String>,
    pub outputs: Vec<OutputFile>,
    pub provenance: Provenance,
}

impl Manifest {
    /// Digest of the content: what downstream keys depend on. Two objects with
    /// the same files hash alike whatever their preimages were.
    pub fn content_digest(&self) -> String {
        let mut h = blake3::Hasher::new();
        for o in &self.outputs {
            h.update(o.path.as_bytes());
            h.update(&[0]);
            h.update(o.blake3.as_bytes());
            h.update(b"\n");
        }
        for i in &self.items {
            h.update(b"item:");
            h.update(i.as_bytes());
            h.update(b"\n");
        }
        h.finalize().to_hex().to_string()
    }
}
