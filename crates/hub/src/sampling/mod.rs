//! The apps' MCP sampling requests (sampling/createMessage), answered with the hub's chat backend.
//!
//! A spoke has no network and no API key, so its runtime forwards each sampling request on the
//! spoke's ask channel, the SpokeService Asks stream that the hub opens after Start. The hub knows
//! the app by the channel the ask came on. It sends the backend that request's own messages and
//! system prompt, with no tools, so no query text and nothing of another app reaches the model.
//! Each app has its own rate limit, `[llm] sampling_per_minute`, and every request gets an audit
//! record with the app and the outcome but never the message text.

mod channel;
mod convert;
#[cfg(test)]
mod tests;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bulkhead_llm::{ChatBackend, LlmError};
use bulkhead_proto::v1::ask_answer::Answer;
use bulkhead_proto::v1::spoke_ask::Ask;
use bulkhead_proto::v1::{AskAnswer, AskFailure, AskRejected, SamplingAnswer, SamplingAsk, SpokeAsk};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::Value;

use crate::audit::{fields, AuditLog};
use crate::config::{LlmBackendKind, LlmConfig};

pub use channel::follow;

/// The maximum size of one sampling request's text, system prompt included, in bytes.
pub const MAX_SAMPLING_BYTES: usize = 256 * 1024;
/// The time the spoke runtime waits for an answer on top of the backend's own attempts.
const ASK_MARGIN: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SamplingError {
    #[error("sampling is turned off because [llm] sampling_per_minute is 0 in hub.toml; set it above 0 to let apps request completions")]
    Disabled,
    #[error("app {app:?} reached its limit of {limit} sampling requests per minute; wait a minute, or raise [llm] sampling_per_minute in hub.toml")]
    RateLimited { app: String, limit: u32 },
    #[error("the ask carries no request; the spoke runtime and the hub are of different versions")]
    EmptyAsk,
    #[error("message {index} has {kind:?} content, but the hub answers sampling requests with text content only; send text")]
    UnsupportedContent { index: usize, kind: String },
    #[error("message {index} has the role {role:?}; use \"user\" or \"assistant\"")]
    InvalidRole { index: usize, role: String },
    #[error("the sampling request has no user message; send at least one")]
    NoUserMessage,
    #[error("the sampling request has {bytes} bytes of text, above the maximum of {MAX_SAMPLING_BYTES}")]
    TooLarge { bytes: usize },
    #[error("the {backend} backend cannot answer free text, because it only picks tools; set [llm] backend = \"openai\" in hub.toml to answer sampling requests")]
    NoTextBackend { backend: String },
    #[error("the LLM backend failed: {0}")]
    Backend(String),
}

impl SamplingError {
    fn failure(&self) -> AskFailure {
        match self {
            SamplingError::Disabled => AskFailure::Disabled,
            SamplingError::RateLimited { .. } => AskFailure::RateLimited,
            SamplingError::EmptyAsk
            | SamplingError::UnsupportedContent { .. }
            | SamplingError::InvalidRole { .. }
            | SamplingError::NoUserMessage
            | SamplingError::TooLarge { .. } => AskFailure::Invalid,
            SamplingError::NoTextBackend { .. } | SamplingError::Backend(_) => AskFailure::BackendFailed,
        }
    }

    /// Names the outcome in the audit record and the log.
    fn outcome(&self) -> &'static str {
        match self.failure() {
            AskFailure::Disabled => "disabled",
            AskFailure::RateLimited => "rate_limited",
            AskFailure::Invalid => "rejected",
            AskFailure::BackendFailed | AskFailure::Unspecified => "failed",
        }
    }
}

/// The hub's answerer of sampling requests, shared by every spoke.
pub struct Sampler {
    backend: Arc<dyn ChatBackend>,
    /// The model name that answers carry: `[llm] model`, or the backend's name when it has none.
    model: String,
    per_minute: u32,
    /// One GCRA bucket per app: a burst of `per_minute` requests, refilled evenly over a minute.
    /// None when sampling is off.
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    audit: Arc<AuditLog>,
}

impl Sampler {
    pub fn new(config: &LlmConfig, backend: Arc<dyn ChatBackend>, audit: Arc<AuditLog>) -> Sampler {
        let limiter = NonZeroU32::new(config.sampling_per_minute).map(|limit| RateLimiter::keyed(Quota::per_minute(limit)));
        let model = match config.backend {
            LlmBackendKind::OpenAi if !config.model.is_empty() => config.model.clone(),
            _ => backend.describe(),
        };
        Sampler { backend, model, per_minute: config.sampling_per_minute, limiter, audit }
    }

    /// Answers one ask from `app`'s spoke and records the outcome in the audit log.
    pub async fn answer(&self, app: &str, ask: SpokeAsk) -> AskAnswer {
        let (outcome, messages) = match ask.ask {
            Some(Ask::Sampling(request)) => {
                let messages = request.messages.len();
                (self.sample(app, &request).await, messages)
            }
            None => (Err(SamplingError::EmptyAsk), 0),
        };
        let (result, reason) = match &outcome {
            Ok(_) => ("answered", String::new()),
            Err(error) => (error.outcome(), error.to_string()),
        };
        if outcome.is_ok() {
            tracing::info!(app, id = ask.id, messages, "sent the completion of a sampling request");
        } else {
            tracing::warn!(app, id = ask.id, messages, outcome = result, "sampling request failed: {reason}");
        }
        let record = fields([
            ("app", Value::from(app)),
            ("outcome", Value::from(result)),
            ("messages", Value::from(messages)),
            ("model", Value::from(if outcome.is_ok() { self.model.as_str() } else { "" })),
            ("reason", Value::from(reason)),
        ]);
        self.audit.note("sampling", record).await;
        let answer = match outcome {
            Ok(reply) => Answer::Sampling(reply),
            Err(error) => Answer::Rejected(AskRejected { failure: error.failure().into(), message: error.to_string() }),
        };
        AskAnswer { id: ask.id, answer: Some(answer) }
    }

    async fn sample(&self, app: &str, request: &SamplingAsk) -> Result<SamplingAnswer, SamplingError> {
        let Some(limiter) = &self.limiter else {
            return Err(SamplingError::Disabled);
        };
        if limiter.check_key(&app.to_string()).is_err() {
            return Err(SamplingError::RateLimited { app: app.to_string(), limit: self.per_minute });
        }
        let chat = convert::chat_request(request)?;
        let reply = self.backend.chat(&chat).await.map_err(|error| match error {
            // The lexical backend's error quotes the request's text and advice about tools, which
            // fit a query but not a sampling request.
            LlmError::CannotPlan { .. } => SamplingError::NoTextBackend { backend: self.backend.describe() },
            other => SamplingError::Backend(other.to_string()),
        })?;
        if reply.content.trim().is_empty() {
            return Err(SamplingError::Backend("the model returned no text".into()));
        }
        Ok(SamplingAnswer { text: reply.content, model: self.model.clone() })
    }
}

/// Returns how long a spoke runtime waits for the answer to one ask: every attempt that `[llm]`
/// allows, the longest wait the openai backend makes between two attempts, and a margin.
pub fn ask_timeout_ms(config: &LlmConfig) -> u64 {
    let attempts = config.retries.saturating_add(1);
    let waits = bulkhead_llm::openai::MAX_BACKOFF.saturating_mul(config.retries);
    let total = config.timeout.saturating_mul(attempts).saturating_add(waits).saturating_add(ASK_MARGIN);
    u64::try_from(total.as_millis()).unwrap_or(u64::MAX)
}
