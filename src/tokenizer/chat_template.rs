//! Chat templates. We do not run Jinja: we recognize the ChatML family
//! (SmolLM2, Qwen) from `tokenizer.chat_template` and render it natively.

use super::chat_message::ChatMessage;

const IM_START: &str = "<|im_start|>";
const IM_END: &str = "<|im_end|>";

/// A recognized ChatML template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChatMl {
    /// The system prompt the template inserts when the conversation does not
    /// start with a system message (SmolLM2 and Qwen2 both have one).
    pub default_system: Option<String>,
}

impl ChatMl {
    /// Recognizes the template, or says why not (missing / not ChatML).
    pub fn detect(template: Option<&str>) -> Result<Self, &'static str> {
        let Some(t) = template else {
            return Err("missing: no chat template in this GGUF");
        };
        if !t.contains(IM_START) {
            return Err("unsupported chat template: only ChatML (<|im_start|> ... <|im_end|>) is implemented");
        }
        Ok(Self {
            default_system: default_system(t),
        })
    }

    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> String {
        let mut out = String::new();
        let starts_with_system = messages.first().is_some_and(|m| m.role == "system");
        if let (Some(sys), false, false) = (
            &self.default_system,
            messages.is_empty(),
            starts_with_system,
        ) {
            push_turn(&mut out, "system", sys);
        }
        for m in messages {
            push_turn(&mut out, &m.role, &m.content);
        }
        if add_generation_prompt {
            out.push_str(IM_START);
            out.push_str("assistant\n");
        }
        out
    }
}

fn push_turn(out: &mut String, role: &str, content: &str) {
    out.push_str(IM_START);
    out.push_str(role);
    out.push('\n');
    out.push_str(content);
    out.push_str(IM_END);
    out.push('\n');
}

/// A constant system turn written as one string literal in the template, e.g.
/// `'<|im_start|>system\nYou are a helpful assistant<|im_end|>\n'`. A system turn
/// built from expressions (`+ messages[0]['content'] +`) is not a default.
fn default_system(template: &str) -> Option<String> {
    // Templates carry either a real newline or Jinja's escaped `\n` in literals.
    for head in [
        format!("{IM_START}system\n"),
        format!("{IM_START}system\\n"),
    ] {
        for (at, _) in template.match_indices(&head) {
            let rest = &template[at + head.len()..];
            let Some(end) = rest.find(IM_END) else {
                continue;
            };
            let text = &rest[..end];
            if !text.contains(['\'', '"', '{', '}', '+']) {
                return Some(text.replace("\\n", "\n"));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    fn msg(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn inserts_default_system_only_when_missing() {
        let t = ChatMl::detect(Some(SMOLLM2)).unwrap();
        let sys = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
        assert_eq!(t.default_system.as_deref(), Some(sys));
        assert_eq!(
            t.render(&[msg("user", "Hi")], true),
            format!("<|im_start|>system\n{sys}<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        );
        assert_eq!(
            t.render(&[msg("system", "S"), msg("user", "Hi")], false),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        );
        assert_eq!(t.render(&[], true), "<|im_start|>assistant\n");
    }

    #[test]
    fn system_built_from_expressions_is_not_a_default() {
        let t = "{{ '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}";
        let t = ChatMl::detect(Some(t)).unwrap();
        assert_eq!(t.default_system, None);
        let escaped = "{{ '<|im_start|>system\\nBe brief.\\nReally.<|im_end|>\\n' }}";
        let t = ChatMl::detect(Some(escaped)).unwrap();
        assert_eq!(t.default_system.as_deref(), Some("Be brief.\nReally."));
    }

    #[test]
    fn non_chatml_or_missing_is_rejected() {
        assert!(ChatMl::detect(None).unwrap_err().starts_with("missing"));
        let llama2 = "{{ bos_token }}[INST] {{ m }} [/INST]";
        assert!(ChatMl::detect(Some(llama2))
            .unwrap_err()
            .starts_with("unsupported"));
    }
}
