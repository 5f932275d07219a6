//! Tokenizers and models loaded once per process. Items are computed from
//! their specs alone, so each one names its model file; consecutive items of
//! a stage name the same file, and this keeps the last one loaded instead of
//! parsing the GGUF again for every item.

use crate::error::Result;
use crate::model::Model;
use crate::tokenizer::Tokenizer;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The most recently loaded value per key; one entry bounds memory to one model.
struct Last<K, V>(Mutex<Option<(K, Arc<V>)>>);

impl<K: PartialEq, V> Last<K, V> {
    const fn new() -> Self {
        Last(Mutex::new(None))
    }

    fn get_or_load(&self, key: K, load: impl FnOnce() -> Result<V>) -> Result<Arc<V>> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((k, v)) = slot.as_ref() {
            if *k == key {
                return Ok(v.clone());
            }
        }
        // Drop the old value before loading the new one (peak memory).
        *slot = None;
        let v = Arc::new(load()?);
        *slot = Some((key, v.clone()));
        Ok(v)
    }
}

static TOKENIZER: Last<PathBuf, Tokenizer> = Last::new();
static MODEL: Last<(PathBuf, String, String), Model> = Last::new();

/// The tokenizer in a GGUF's metadata.
pub fn tokenizer(gguf: &Path) -> Result<Arc<Tokenizer>> {
    TOKENIZER.get_or_load(gguf.to_path_buf(), || Tokenizer::from_gguf_file(gguf))
}

/// A model file loaded with `dtype` weights and a `kv_dtype` cache.
pub fn model(path: &Path, dtype: &str, kv_dtype: &str) -> Result<Arc<Model>> {
    let key = (path.to_path_buf(), dtype.to_string(), kv_dtype.to_string());
    MODEL.get_or_load(key, || {
        crate::model_source::load_model(path, dtype, kv_dtype)
    })
}
