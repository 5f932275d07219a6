//! The tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.*`):
//! byte-level BPE built with the `tokenizers` crate, special tokens from the
//! token types, and the ChatML chat template.

mod chat_message;
mod chat_template;
mod gguf_bpe;
mod gguf_meta;
mod gguf_spm;
mod pretokenizer;

#[cfg(test)]
mod tests_gemma;
#[cfg(test)]
mod tests_malformed;
#[cfg(test)]
mod tests_smollm2;
#[cfg(test)]
mod tests_vocab;

use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::Content;
use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::Decoder;

use crate::error::{input_err, other, IoContext, Result};
pub use chat_message::ChatMessage;
use chat_template::ChatMl;
use gguf_meta::GgufVocab;

/// A model's tokenizer. Immutable after loading; `Send + Sync`.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// Token text by id, as stored in the GGUF (byte-level encoded, except
    /// special tokens, which are verbatim).
    tokens: Vec<String>,
    special: Vec<bool>,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    /// SentencePiece pieces ("▁", `<0xXX>`) rather than byte-level BPE ones.
    spm: bool,
    /// The chat template, or why there is none (reported on use).
    chat: std::result::Result<ChatMl, &'static str>,
    source: PathBuf,
}

impl Tokenizer {
    /// Reads the GGUF header of `path` (not the tensors) and builds the tokenizer.
    pub fn from_gguf_file(path: &Path) -> Result<Self> {
        crate::model::gguf_check::check(path, &path.display().to_string(), "gguf header")?;
        let mut f = std::fs::File::open(path).ctx(path.display())?;
        let content =
            Content::read(&mut f).map_err(|e| input_err(path.display(), "gguf header", e))?;
        Self::from_gguf(&content, path)
    }

    /// Builds the tokenizer from already-read GGUF metadata; `source` names the
    /// file in error messages.
    pub fn from_gguf(content: &Content, source: &Path) -> Result<Self> {
        let vocab = GgufVocab::read(content, source)?;
        let inner = match &vocab.scores {
            Some(scores) => gguf_spm::build(&vocab, scores, source)?,
            None => gguf_bpe::build(&vocab, source)?,
        };
        let special = vocab
            .token_types
            .iter()
            .map(|&t| gguf_bpe::is_special_type(t))
            .collect();
        let chat = ChatMl::detect(vocab.chat_template.as_deref());
        Ok(Self {
            inner,
            tokens: vocab.tokens,
            special,
            bos: vocab.bos,
            eos: vocab.eos,
            add_bos: vocab.add_bos,
            spm: vocab.scores.is_some(),
            chat,
            source: source.to_owned(),
        })
    }

    /// Token ids of `text`. Special tokens written in the text (e.g.
    /// `<|im_start|>`) become their ids. Never adds BOS.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| other(format!("tokenizing: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Like [`encode`](Self::encode), with BOS first iff the model asks for it
    /// (`tokenizer.ggml.add_bos_token`).
    pub fn encode_for_model(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        if self.add_bos {
            if let Some(bos) = self.bos {
                ids.push(bos);
            }
        }
        ids.extend(self.encode(text)?);
        Ok(ids)
    }

    /// Text of `ids`, special tokens included verbatim. Bytes that do not form
    /// valid UTF-8 (a sequence cut inside a character) become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let pieces = ids
            .iter()
            .map(|&id| {
                self.tokens.get(id as usize).cloned().ok_or_else(|| {
                    other(format!(
                        "token id {id} outside the vocabulary of {} tokens ({})",
                        self.tokens.len(),
                        self.source.display()
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if self.spm {
            let refs: Vec<&str> = pieces.iter().map(|s| s.as_str()).collect();
            return Ok(gguf_spm::decode(&refs));
        }
        ByteLevel::default()
            .decode(pieces)
            .map_err(|e| other(format!("detokenizing: {e}")))
    }

    /// Number of tokens in the GGUF vocabulary (special tokens included).
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// BOS iff the model asks for it first (`tokenizer.ggml.add_bos_token`),
    /// as [`encode_for_model`](Self::encode_for_model) puts it.
    pub fn model_bos(&self) -> Option<u32> {
        self.bos.filter(|_| self.add_bos)
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// Ids that end generation: EOS, plus `<|im_end|>` and `<|endoftext|>`
    /// where the vocabulary has them as special tokens.
    pub fn stop_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.eos.into_iter().collect();
        for name in ["<|im_end|>", "<|endoftext|>"] {
            if let Some(id) = self.inner.token_to_id(name) {
                if self.is_special(id) && !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids
    }

    /// Control or user-defined token (GGUF token type 3 or 4).
    pub fn is_special(&self, id: u32) -> bool {
        self.special.get(id as usize).copied().unwrap_or(false)
    }

    /// Decoded text of one token; None for an id outside the vocabulary.
    pub fn token_text(&self, id: u32) -> Option<String> {
        self.decode(&[id]).ok()
    }

    /// Renders `messages` with the model's chat template (ChatML only).
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String> {
        match &self.chat {
            Ok(t) => Ok(t.render(messages, add_generation_prompt)),
            Err(why) => Err(input_err(
                self.source.display(),
                "tokenizer.chat_template",
                why,
            )),
        }
    }
}
