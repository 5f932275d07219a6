//! Tokenizers and models loaded once per process. Items are computed from
//! their specs alone, so each one names its model file; consecutive items of
//! a stage name the same files, and this keeps the last few loaded instead
//! of parsing the GGUF again for every item.

use crate::error::Result;
use crate::model::Model;
use crate::tokenizer::Tokenizer;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The last few loaded values, most recent last. Three entries hold a
/// target, a draft and an intermediate model (a speculative cascade).
struct Last<K, V>(Mutex<Vec<(K, Arc<V>)>>);

const KEEP: usize = 3;

impl<K: PartialEq, V> Last<K, V> {
    const fn new() -> Self {
        Last(Mutex::new(Vec::new()))
    }

    fn get_or_load(&self, key: K, load: impl FnOnce() -> Result<V>) -> Result<Arc<V>> {
        let mut slots = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = slots.iter().position(|(k, _)| *k == key) {
            let hit = slots.remove(i);
            let v = hit.1.clone();
            slots.push(hit);
            return Ok(v);
        }
        // Drop the oldest before loading the new one (peak memory).
        if slots.len() >= KEEP {
            slots.remove(0);
        }
        let v = Arc::new(load()?);
        slots.push((key, v.clone()));
        Ok(v)
    }
}

static TOKENIZER: Last<PathBuf, Tokenizer> = Last::new();
static MODEL: Last<(PathBuf, String, String, String), Model> = Last::new();

/// The tokenizer in a GGUF's metadata.
pub fn tokenizer(gguf: &Path) -> Result<Arc<Tokenizer>> {
    TOKENIZER.get_or_load(gguf.to_path_buf(), || Tokenizer::from_gguf_file(gguf))
}

/// A model file loaded with `dtype` weights and a `kv_dtype` cache on `device`.
pub fn model(path: &Path, dtype: &str, kv_dtype: &str, device: &str) -> Result<Arc<Model>> {
    let key = (
        path.to_path_buf(),
        dtype.to_string(),
        kv_dtype.to_string(),
        device.to_string(),
    );
    MODEL.get_or_load(key, || {
        crate::model_source::load_model(path, dtype, kv_dtype, device)
    })
}
