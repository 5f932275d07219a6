//! A SentencePiece (BPE-type, `tokenizer.ggml.model = llama`, e.g. Gemma)
//! tokenizer from a GGUF vocabulary of tokens and scores, as a `tokenizers`
//! BPE with byte fallback. SentencePiece merges the adjacent pair whose
//! union has the highest score; the GGUF has no merge list, so it is derived
//! the way transformers' `SentencePieceExtractor` does: every split of a
//! token into two vocabulary pieces is a merge, ranked by the token's score.
//! Spaces become U+2581 ("▁"); the text is not pre-split (llama.cpp's SPM).

use std::path::Path;

use ahash::AHashMap;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::{Prepend, Replace, Sequence};
use tokenizers::{AddedToken, NormalizerWrapper};

use super::gguf_bpe::is_special_type;
use super::gguf_meta::GgufVocab;
use crate::error::{input_err, other, Result};

pub(crate) const SPACE: &str = "\u{2581}";

pub(crate) fn build(
    vocab: &GgufVocab,
    scores: &[f32],
    source: &Path,
) -> Result<tokenizers::Tokenizer> {
    let file = source.display();
    let mut map: AHashMap<String, u32> = AHashMap::with_capacity(vocab.tokens.len());
    for (id, tok) in vocab.tokens.iter().enumerate() {
        map.entry(tok.clone()).or_insert(id as u32);
    }
    // (score of the union, union id, left id) -> merge; highest score first.
    let mut ranked: Vec<(f32, u32, u32, String, String)> = Vec::new();
    for (id, tok) in vocab.tokens.iter().enumerate() {
        if is_special_type(vocab.token_types[id]) {
            continue;
        }
        for (at, _) in tok.char_indices().skip(1) {
            let (l, r) = tok.split_at(at);
            if let (Some(&li), Some(_)) = (map.get(l), map.get(r)) {
                ranked.push((scores[id], id as u32, li, l.to_owned(), r.to_owned()));
            }
        }
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let merges = ranked.into_iter().map(|(_, _, _, l, r)| (l, r)).collect();
    let mut bpe = BPE::builder()
        .vocab_and_merges(map.clone(), merges)
        .byte_fallback(true);
    if map.contains_key("<unk>") {
        bpe = bpe.unk_token("<unk>".into());
    }
    let bpe = bpe
        .build()
        .map_err(|e| input_err(&file, "tokenizer.ggml.scores", e))?;
    let mut tok = tokenizers::Tokenizer::new(bpe);
    let mut norms: Vec<NormalizerWrapper> = Vec::new();
    if vocab.add_space_prefix {
        norms.push(Prepend::new(SPACE.into()).into());
    }
    let replace = Replace::new(" ", SPACE).map_err(|e| other(format!("normalizer: {e}")))?;
    norms.push(replace.into());
    // Infallible in practice; the Result is the builder API's.
    let _ = tok.with_normalizer(Some(Sequence::new(norms)));
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

/// Text of SentencePiece pieces: "▁" is a space, `<0xXX>` a byte; invalid
/// UTF-8 becomes U+FFFD.
pub(crate) fn decode(pieces: &[&str]) -> String {
    let mut bytes = Vec::new();
    for p in pieces {
        let byte = p
            .strip_prefix("<0x")
            .and_then(|h| h.strip_suffix('>'))
            .filter(|h| h.len() == 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match byte {
            Some(b) => bytes.push(b),
            None => bytes.extend_from_slice(p.replace(SPACE, " ").as_bytes()),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
