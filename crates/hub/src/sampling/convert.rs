//! Turning an app's sampling request into the chat request the backend gets.

use bulkhead_llm::{ChatRequest, Message, Role};
use bulkhead_proto::v1::SamplingAsk;

use super::{SamplingError, MAX_SAMPLING_BYTES};

/// Builds the chat request from the app's system prompt and messages alone, with no tools. Every
/// content block must be text. The text blocks of one message are joined by newlines.
pub(super) fn chat_request(ask: &SamplingAsk) -> Result<ChatRequest, SamplingError> {
    let mut bytes = ask.system_prompt.len();
    let mut messages = Vec::with_capacity(ask.messages.len() + 1);
    if !ask.system_prompt.trim().is_empty() {
        messages.push(Message::system(ask.system_prompt.clone()));
    }
    for (index, message) in ask.messages.iter().enumerate() {
        let role = match message.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => return Err(SamplingError::InvalidRole { index, role: other.to_string() }),
        };
        let mut texts = Vec::with_capacity(message.content.len());
        for block in &message.content {
            if block.r#type != "text" {
                return Err(SamplingError::UnsupportedContent { index, kind: block.r#type.clone() });
            }
            bytes = bytes.saturating_add(block.text.len());
            texts.push(block.text.as_str());
        }
        messages.push(Message {
            role,
            content: texts.join("\n"),
            tool_calls: Vec::new(),
            tool_call_id: None,
        });
    }
    if bytes > MAX_SAMPLING_BYTES {
        return Err(SamplingError::TooLarge { bytes });
    }
    if !messages.iter().any(|message| message.role == Role::User) {
        return Err(SamplingError::NoUserMessage);
    }
    let max_tokens = (ask.max_tokens > 0).then_some(ask.max_tokens);
    Ok(ChatRequest { messages, tools: Vec::new(), max_tokens })
}
