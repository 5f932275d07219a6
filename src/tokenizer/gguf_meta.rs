//! Reads the `tokenizer.*` keys of a GGUF file into plain Rust values, checking
//! types and ranges so that everything downstream can trust them.

use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};

use crate::error::{input_err, Error, Result};

/// GGUF token types (llama.cpp's `llama_token_type`).
pub(crate) const TOKEN_TYPE_CONTROL: i32 = 3;
pub(crate) const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// The tokenizer part of a GGUF file's metadata.
pub(crate) struct GgufVocab {
    pub pre: String,
    pub tokens: Vec<String>,
    /// One per token; 1 (normal) when the file has no `token_type` array.
    pub token_types: Vec<i32>,
    pub merges: Vec<(String, String)>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub add_bos: bool,
    pub chat_template: Option<String>,
    /// SentencePiece (`tokenizer.ggml.model = llama`): merge by these scores.
    pub scores: Option<Vec<f32>>,
    /// SentencePiece: prepend a space to the text (`add_space_prefix`).
    pub add_space_prefix: bool,
}

impl GgufVocab {
    pub fn read(content: &Content, source: &Path) -> Result<Self> {
        let meta = Meta { content, source };
        let model = meta.string("tokenizer.ggml.model")?.ok_or_else(|| {
            meta.err(
                "tokenizer.ggml.model",
                "missing: this GGUF has no tokenizer",
            )
        })?;
        let spm = match model.as_str() {
            "gpt2" => false,
            "llama" => true,
            other => {
                return Err(meta.err(
                    "tokenizer.ggml.model",
                    format!(
                        "unsupported tokenizer model {other:?}; only byte-level BPE ('gpt2') \
                         and SentencePiece ('llama')"
                    ),
                ))
            }
        };
        if spm {
            return Self::read_spm(&meta);
        }
        let pre = meta.string("tokenizer.ggml.pre")?.ok_or_else(|| {
            meta.err(
                "tokenizer.ggml.pre",
                "missing: cannot choose a pre-tokenizer for this BPE vocabulary",
            )
        })?;
        let tokens = meta
            .strings("tokenizer.ggml.tokens")?
            .ok_or_else(|| meta.err("tokenizer.ggml.tokens", "missing"))?;
        if tokens.is_empty() {
            return Err(meta.err("tokenizer.ggml.tokens", "empty vocabulary"));
        }
        let token_types = match meta.ints("tokenizer.ggml.token_type")? {
            None => vec![1; tokens.len()],
            Some(t) if t.len() == tokens.len() => t,
            Some(t) => {
                return Err(meta.err(
                    "tokenizer.ggml.token_type",
                    format!("{} entries for {} tokens", t.len(), tokens.len()),
                ))
            }
        };
        let merges = meta
            .strings("tokenizer.ggml.merges")?
            .ok_or_else(|| meta.err("tokenizer.ggml.merges", "missing (needed for BPE)"))?
            .iter()
            .enumerate()
            .map(|(i, m)| match m.split_once(' ') {
                Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_owned(), b.to_owned())),
                _ => Err(meta.err(
                    "tokenizer.ggml.merges",
                    format!("entry {i} ({m:?}) is not two tokens separated by one space"),
                )),
            })
            .collect::<Result<Vec<_>>>()?;
        let bos = meta.token_id("tokenizer.ggml.bos_token_id", tokens.len())?;
        let eos = meta.token_id("tokenizer.ggml.eos_token_id", tokens.len())?;
        // llama.cpp's default for the BPE pre-tokenizers we support is no BOS.
        let add_bos = meta.flag("tokenizer.ggml.add_bos_token", false)?;
        let chat_template = meta.string("tokenizer.chat_template")?;
        Ok(Self {
            pre,
            tokens,
            token_types,
            merges,
            bos,
            eos,
            add_bos,
            chat_template,
            scores: None,
            add_space_prefix: false,
        })
    }

    /// A SentencePiece vocabulary: tokens, scores and types; no merges.
    fn read_spm(meta: &Meta) -> Result<Self> {
        let tokens = meta
            .strings("tokenizer.ggml.tokens")?
            .ok_or_else(|| meta.err("tokenizer.ggml.tokens", "missing"))?;
        if tokens.is_empty() {
            return Err(meta.err("tokenizer.ggml.tokens", "empty vocabulary"));
        }
        let n = tokens.len();
        let check_len = |key: &str, len: usize| {
            if len == n {
                Ok(())
            } else {
                Err(meta.err(key, format!("{len} entries for {n} tokens")))
            }
        };
        let token_types = match meta.ints("tokenizer.ggml.token_type")? {
            None => vec![1; n],
            Some(t) => {
                check_len("tokenizer.ggml.token_type", t.len())?;
                t
            }
        };
        let scores = meta.floats("tokenizer.ggml.scores")?.ok_or_else(|| {
            meta.err(
                "tokenizer.ggml.scores",
                "missing (needed for SentencePiece)",
            )
        })?;
        check_len("tokenizer.ggml.scores", scores.len())?;
        Ok(Self {
            pre: "spm".into(),
            tokens,
            token_types,
            merges: Vec::new(),
            bos: meta.token_id("tokenizer.ggml.bos_token_id", n)?,
            eos: meta.token_id("tokenizer.ggml.eos_token_id", n)?,
            // llama.cpp's SentencePiece default is BOS on, space prefix on.
            add_bos: meta.flag("tokenizer.ggml.add_bos_token", true)?,
            chat_template: meta.string("tokenizer.chat_template")?,
            scores: Some(scores),
            add_space_prefix: meta.flag("tokenizer.ggml.add_space_prefix", true)?,
        })
    }
}

/// Typed access to the metadata map; every failure names the file and key.
struct Meta<'a> {
    content: &'a Content,
    source: &'a Path,
}

impl Meta<'_> {
    fn err(&self, key: &str, msg: impl std::fmt::Display) -> Error {
        input_err(self.source.display(), key, msg)
    }

    fn flag(&self, key: &str, default: bool) -> Result<bool> {
        match self.content.metadata.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.err(key, format!("expected a bool, found {:?}", v.value_type()))),
        }
    }

    fn floats(&self, key: &str) -> Result<Option<Vec<f32>>> {
        let Some(vals) = self.array(key)? else {
            return Ok(None);
        };
        vals.iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::F32(x) if x.is_finite() => Ok(*x),
                Value::F64(x) if x.is_finite() => Ok(*x as f32),
                _ => Err(self.err(key, format!("entry {i} is not a finite float"))),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    fn string(&self, key: &str) -> Result<Option<String>> {
        match self.content.metadata.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.err(
                key,
                format!("expected a string, found {:?}", v.value_type()),
            )),
        }
    }

    fn array(&self, key: &str) -> Result<Option<&[Value]>> {
        match self.content.metadata.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(self.err(
                key,
                format!("expected an array, found {:?}", v.value_type()),
            )),
        }
    }

    fn strings(&self, key: &str) -> Result<Option<Vec<String>>> {
        let Some(arr) = self.array(key)? else {
            return Ok(None);
        };
        arr.iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                v => Err(self.err(
                    key,
                    format!("entry {i}: expected a string, found {:?}", v.value_type()),
                )),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    fn ints(&self, key: &str) -> Result<Option<Vec<i32>>> {
        let Some(arr) = self.array(key)? else {
            return Ok(None);
        };
        arr.iter()
            .enumerate()
            .map(|(i, v)| {
                int_value(v)
                    .and_then(|x| i32::try_from(x).ok())
                    .ok_or_else(|| {
                        self.err(key, format!("entry {i}: expected an i32, found {v:?}"))
                    })
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// An optional token id, which must index the vocabulary.
    fn token_id(&self, key: &str, n_tokens: usize) -> Result<Option<u32>> {
        let Some(v) = self.content.metadata.get(key) else {
            return Ok(None);
        };
        let id = int_value(v)
            .ok_or_else(|| self.err(key, format!("expected an integer, found {v:?}")))?;
        match u32::try_from(id) {
            Ok(id) if (id as usize) < n_tokens => Ok(Some(id)),
            _ => Err(self.err(
                key,
                format!("token id {id} outside the vocabulary of {n_tokens} tokens"),
            )),
        }
    }
}

/// Any GGUF integer type, widened (writers differ in which one they use).
fn int_value(v: &Value) -> Option<i64> {
    Some(match v {
        Value::U8(x) => *x as i64,
        Value::I8(x) => *x as i64,
        Value::U16(x) => *x as i64,
        Value::I16(x) => *x as i64,
        Value::U32(x) => *x as i64,
        Value::I32(x) => *x as i64,
        Value::U64(x) => i64::try_from(*x).ok()?,
        Value::I64(x) => *x,
        _ => return None,
    })
}
