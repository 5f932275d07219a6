//! Builds a `tokenizers` byte-level BPE tokenizer from a GGUF vocabulary.

use std::path::Path;

use ahash::AHashMap;
use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::models::bpe::BPE;
use tokenizers::AddedToken;

use super::gguf_meta::{GgufVocab, TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED};
use super::pretokenizer::{PreTokenizerKind, SUPPORTED_NAMES};
use crate::error::{input_err, other, Result};

/// Whether a GGUF token type makes a token special (matched verbatim in text).
pub(crate) fn is_special_type(token_type: i32) -> bool {
    token_type == TOKEN_TYPE_CONTROL || token_type == TOKEN_TYPE_USER_DEFINED
}

pub(crate) fn build(vocab: &GgufVocab, source: &Path) -> Result<tokenizers::Tokenizer> {
    let file = source.display();
    let kind = PreTokenizerKind::from_name(&vocab.pre).ok_or_else(|| {
        input_err(
            &file,
            "tokenizer.ggml.pre",
            format!(
                "unknown pre-tokenizer {:?}; supported: {}",
                vocab.pre,
                SUPPORTED_NAMES.join(", ")
            ),
        )
    })?;

    // On a duplicated token string the first id wins for encoding (decoding
    // goes through our own id -> text table, so every id still decodes).
    let mut map: AHashMap<String, u32> = AHashMap::with_capacity(vocab.tokens.len());
    for (id, tok) in vocab.tokens.iter().enumerate() {
        map.entry(tok.clone()).or_insert(id as u32);
    }
    let bpe = BPE::builder()
        .vocab_and_merges(map, vocab.merges.clone())
        .build()
        .map_err(|e| input_err(&file, "tokenizer.ggml.merges", e))?;

    let mut tok = tokenizers::Tokenizer::new(bpe);
    let pre = kind
        .build()
        .map_err(|e| other(format!("building pre-tokenizer {:?}: {e}", vocab.pre)))?;
    tok.with_pre_tokenizer(Some(pre));
    tok.with_decoder(Some(ByteLevel::default()));

    // Control and user-defined tokens are stored verbatim (not byte-encoded) and
    // are recognized in input text before pre-tokenization, as llama.cpp does.
    let specials: Vec<AddedToken> = vocab
        .tokens
        .iter()
        .zip(&vocab.token_types)
        .filter(|(t, ty)| is_special_type(**ty) && !t.is_empty())
        .map(|(t, _)| AddedToken::from(t.clone(), true))
        .collect();
    tok.add_special_tokens(specials)
        .map_err(|e| other(format!("registering special tokens: {e}")))?;
    Ok(tok)
}
