//! One turn of a conversation: what callers hand the tokenizer and what the
//! chat template renders. Its own file so `chat_template` needs nothing
//! from the tokenizer that uses it.

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}
