//! The pre-tokenizer named by `tokenizer.ggml.pre`, built from the `tokenizers`
//! crate's parts. Names map to the same regex families as llama.cpp.

use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::SplitDelimiterBehavior;

/// Qwen2's split regex. The original `(?i:'s|...)` is spelled out case by case,
/// as llama.cpp does; numbers are split one digit at a time.
const QWEN2_REGEX: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PreTokenizerKind {
    /// GPT-2's regex (ByteLevel's built-in one).
    Gpt2,
    /// Every digit on its own, then GPT-2's regex (SmolLM, StarCoder, ...).
    DigitsThenGpt2,
    /// Qwen2's regex.
    Qwen2,
}

/// The names accepted in `tokenizer.ggml.pre`, for error messages.
pub(crate) const SUPPORTED_NAMES: &[&str] = &[
    "gpt-2",
    "phi-2",
    "roberta-bpe",
    "mpt",
    "olmo",
    "smollm",
    "starcoder",
    "refact",
    "codeshell",
    "qwen2",
    "deepseek-r1-qwen",
    "stablelm2",
];

impl PreTokenizerKind {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "gpt-2" | "phi-2" | "roberta-bpe" | "mpt" | "olmo" => Self::Gpt2,
            "smollm" | "starcoder" | "refact" | "codeshell" => Self::DigitsThenGpt2,
            "qwen2" | "deepseek-r1-qwen" | "stablelm2" => Self::Qwen2,
            _ => return None,
        })
    }

    pub fn build(self) -> tokenizers::Result<PreTokenizerWrapper> {
        // No prefix space: GGUF BPE vocabularies encode text as given.
        let gpt2 = ByteLevel::new(false, true, true);
        Ok(match self {
            Self::Gpt2 => gpt2.into(),
            Self::DigitsThenGpt2 => {
                Sequence::new(vec![Digits::new(true).into(), gpt2.into()]).into()
            }
            Self::Qwen2 => {
                let split = Split::new(
                    SplitPattern::Regex(QWEN2_REGEX.to_owned()),
                    SplitDelimiterBehavior::Isolated,
                    false,
                )?;
                // The regex already split the text; ByteLevel only maps bytes.
                Sequence::new(vec![
                    split.into(),
                    ByteLevel::new(false, false, false).into(),
                ])
                .into()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

    fn pieces(kind: PreTokenizerKind, text: &str) -> Vec<String> {
        let mut s = PreTokenizedString::from(text);
        kind.build().unwrap().pre_tokenize(&mut s).unwrap();
        s.get_splits(OffsetReferential::Original, OffsetType::Byte)
            .into_iter()
            .map(|(p, _, _)| p.to_owned())
            .collect()
    }

    #[test]
    fn every_supported_name_resolves() {
        for name in SUPPORTED_NAMES {
            let kind = PreTokenizerKind::from_name(name).expect(name);
            kind.build().expect("pre-tokenizer builds");
        }
        assert_eq!(PreTokenizerKind::from_name("llama-bpe"), None);
        assert_eq!(PreTokenizerKind::from_name(""), None);
    }

    #[test]
    fn digit_handling_differs_by_family() {
        // Byte-level pieces: 'Ġ' stands for a space.
        assert_eq!(pieces(PreTokenizerKind::Gpt2, "a 123"), ["a", "Ġ123"]);
        assert_eq!(
            pieces(PreTokenizerKind::DigitsThenGpt2, "a 123"),
            ["a", "Ġ", "1", "2", "3"]
        );
        assert_eq!(
            pieces(PreTokenizerKind::Qwen2, "a 123"),
            ["a", "Ġ", "1", "2", "3"]
        );
    }

    #[test]
    fn qwen2_contractions_are_case_insensitive() {
        assert_eq!(pieces(PreTokenizerKind::Qwen2, "WE'VE"), ["WE", "'VE"]);
        assert_eq!(pieces(PreTokenizerKind::Gpt2, "WE'VE"), ["WE", "'", "VE"]);
    }
}
