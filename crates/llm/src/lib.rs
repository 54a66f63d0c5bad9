//! Chat backends with tool calling, behind one trait, for bulkhead's query planner and the per-app
//! contexts of instruction steps.
//!
//! - [`openai`]: any OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp's server, Ollama,
//!   OpenAI), with retries on 429 and 5xx and lenient parsing of tool calls.
//! - [`lexical`]: an offline backend that needs no model. It ranks the offered tools by BM25 over
//!   their descriptions and fills arguments from the request text.

pub mod lexical;
mod message;
pub mod openai;

pub use message::{ChatReply, ChatRequest, Message, Role, ToolCall, ToolSpec};

/// Errors of every chat backend.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the LLM endpoint {url} could not be reached: {reason}; check [llm] base_url in hub.toml and that the server runs")]
    Unreachable { url: String, reason: String },
    #[error("the LLM endpoint {url} did not answer within {seconds} s; raise [llm] timeout in hub.toml or check the server")]
    Timeout { url: String, seconds: u64 },
    #[error("the LLM endpoint {url} returned HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the LLM endpoint {url} returned an invalid response: {reason}")]
    InvalidResponse { url: String, reason: String },
    #[error("the lexical planner cannot plan {query:?}: {reason}")]
    CannotPlan { query: String, reason: String },
    #[error("invalid LLM backend settings: {0}")]
    Settings(String),
}

/// A chat model that may answer with text or with calls to the tools the request offers.
#[async_trait::async_trait]
pub trait ChatBackend: Send + Sync {
    /// Sends one chat request and returns the model's reply.
    async fn chat(&self, request: &ChatRequest) -> Result<ChatReply, LlmError>;

    /// Names the backend in logs and events, such as "openai gpt-4o-mini".
    fn describe(&self) -> String;
}
