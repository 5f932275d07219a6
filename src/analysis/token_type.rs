//! Token types for attention analysis and the anchor presses: special,
//! punctuation, stopword, content, number, whitespace (seed 002, phase 0),
//! from a token's decoded text.

pub const TYPES: &[&str] = &[
    "special",
    "punctuation",
    "stopword",
    "content",
    "number",
    "whitespace",
];

/// A short English stopword list (NLTK's most frequent ones).
const STOPWORDS: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "if", "of", "at", "by", "for", "with", "about", "to",
    "from", "in", "on", "is", "are", "was", "were", "be", "been", "being", "have", "has", "had",
    "do", "does", "did", "i", "me", "my", "we", "our", "you", "your", "he", "him", "his", "she",
    "her", "it", "its", "they", "them", "their", "what", "which", "who", "this", "that", "these",
    "those", "am", "as", "so", "not", "no", "than", "too", "very", "can", "will", "just", "there",
    "then", "into", "up", "out", "all", "any", "some", "such", "only", "own", "same", "s", "t",
];

/// The type of a token with decoded `text` (`special` from the tokenizer).
pub fn classify(text: &str, special: bool) -> &'static str {
    if special {
        return "special";
    }
    let t = text.trim();
    if t.is_empty() {
        "whitespace"
    } else if t.chars().all(|c| c.is_ascii_digit()) {
        "number"
    } else if t.chars().all(|c| !c.is_alphanumeric()) {
        "punctuation"
    } else if STOPWORDS.contains(&t.to_lowercase().as_str()) {
        "stopword"
    } else {
        "content"
    }
}

/// Anchor flags of anchor rules A and C: special or punctuation.
pub fn is_anchor(ty: &str) -> bool {
    ty == "special" || ty == "punctuation"
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn types() {
        assert_eq!(classify(" the", false), "stopword");
        assert_eq!(classify(",", false), "punctuation");
        assert_eq!(classify("7", false), "number");
        assert_eq!(classify("\n\n", false), "whitespace");
        assert_eq!(classify(" Alice", false), "content");
        assert_eq!(classify("<|im_end|>", true), "special");
    }
}
