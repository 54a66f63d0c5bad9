//! The messages, tool specifications and replies that every backend shares.

use serde_json::Value;

/// The role of a message's author in the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
    /// The result of a tool call, in response to the assistant message that requested it.
    Tool,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// The tool calls of an assistant message.
    pub tool_calls: Vec<ToolCall>,
    /// The id of the call that a tool message responds to.
    pub tool_call_id: Option<String>,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Message {
        Message {
            role: Role::System,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    pub fn user(content: impl Into<String>) -> Message {
        Message {
            role: Role::User,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// The assistant message that a reply becomes when the conversation goes on.
    pub fn assistant(reply: &ChatReply) -> Message {
        Message {
            role: Role::Assistant,
            content: reply.content.clone(),
            tool_calls: reply.tool_calls.clone(),
            tool_call_id: None,
        }
    }

    pub fn tool_result(call_id: &str, content: impl Into<String>) -> Message {
        Message {
            role: Role::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(call_id.to_string()),
        }
    }
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// The function name, from a-z, A-Z, 0-9, _ and -, at most 64 characters, as the OpenAI API
    /// requires.
    pub name: String,
    pub description: String,
    /// The JSON Schema of the arguments object.
    pub parameters: Value,
}

/// A call of one offered tool, as the model made it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The call's id. A backend generates one when the model gives none.
    pub id: String,
    pub name: String,
    /// The arguments, always a JSON object.
    pub arguments: Value,
}

/// One request: the conversation so far and the tools the model may call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    /// The maximum number of tokens the reply may have. None leaves it to the backend.
    pub max_tokens: Option<u32>,
}

/// The model's reply: text, tool calls, or both.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatReply {
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
}
