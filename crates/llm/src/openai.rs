//! A client of OpenAI-compatible chat-completions endpoints, such as vLLM, llama.cpp's server,
//! Ollama or OpenAI itself.

mod wire;

#[cfg(test)]
mod tests;

use std::time::Duration;

use reqwest::StatusCode;

use crate::{ChatBackend, ChatReply, ChatRequest, LlmError};

/// Maximum length, in bytes, of a response body quoted in an error message.
const MAX_QUOTED_BODY: usize = 300;
/// Maximum wait between two attempts, whatever Retry-After requests.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How to reach the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAiSettings {
    /// The API root, such as "http://127.0.0.1:8000/v1". The client posts to
    /// `{base_url}/chat/completions`.
    pub base_url: String,
    pub model: String,
    /// The bearer token, or `None` for servers that need none.
    pub api_key: Option<String>,
    /// The deadline of one HTTP attempt.
    pub timeout: Duration,
    /// Attempts after the first one, for 429, 5xx and connection failures.
    pub retries: u32,
    /// The wait before the first retry. It doubles with each retry.
    pub backoff: Duration,
}

pub struct OpenAiBackend {
    client: reqwest::Client,
    url: String,
    settings: OpenAiSettings,
}

impl OpenAiBackend {
    pub fn new(settings: OpenAiSettings) -> Result<OpenAiBackend, LlmError> {
        let base = settings.base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(LlmError::Settings(format!(
                "base_url {:?} must start with http:// or https://, such as \"http://127.0.0.1:8000/v1\"",
                settings.base_url
            )));
        }
        if settings.model.is_empty() {
            return Err(LlmError::Settings(
                "model is empty; name the model the endpoint serves".into(),
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|error| {
                LlmError::Settings(format!("cannot build the HTTP client: {error}"))
            })?;
        let url = format!("{base}/chat/completions");
        Ok(OpenAiBackend {
            client,
            url,
            settings,
        })
    }

    /// Sends one attempt. `Ok(Err(wait))` requests a retry after `wait`, or after the backoff
    /// when `wait` is `None`.
    async fn attempt(
        &self,
        body: &serde_json::Value,
    ) -> Result<Result<ChatReply, (LlmError, Option<Duration>)>, LlmError> {
        let mut request = self.client.post(&self.url).json(body);
        if let Some(key) = &self.settings.api_key {
            request = request.bearer_auth(key);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) if error.is_timeout() => {
                let error = LlmError::Timeout {
                    url: self.url.clone(),
                    seconds: self.settings.timeout.as_secs(),
                };
                return Ok(Err((error, None)));
            }
            Err(error) => {
                let error = LlmError::Unreachable {
                    url: self.url.clone(),
                    reason: error.to_string(),
                };
                return Ok(Err((error, None)));
            }
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let text = match response.text().await {
            Ok(text) => text,
            Err(error) => {
                let error = LlmError::Unreachable {
                    url: self.url.clone(),
                    reason: format!("reading the body failed: {error}"),
                };
                return Ok(Err((error, None)));
            }
        };
        if status.is_success() {
            return wire::parse_reply(&text)
                .map(Ok)
                .map_err(|reason| LlmError::InvalidResponse {
                    url: self.url.clone(),
                    reason,
                });
        }
        let error = LlmError::Status {
            url: self.url.clone(),
            status: status.as_u16(),
            body: quote(&text),
        };
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Ok(Err((error, retry_after)));
        }
        Err(error)
    }
}

#[async_trait::async_trait]
impl ChatBackend for OpenAiBackend {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatReply, LlmError> {
        let body = wire::request_body(&self.settings.model, request);
        let mut backoff = self.settings.backoff;
        let mut attempt = 0;
        loop {
            let (error, retry_after) = match self.attempt(&body).await? {
                Ok(reply) => return Ok(reply),
                Err(retry) => retry,
            };
            if attempt >= self.settings.retries {
                return Err(error);
            }
            attempt += 1;
            let wait = retry_after.unwrap_or(backoff).min(MAX_BACKOFF);
            tracing::warn!(url = %self.url, attempt, wait_ms = wait.as_millis(), %error, "retrying the LLM request");
            tokio::time::sleep(wait).await;
            backoff = backoff.saturating_mul(2);
        }
    }

    fn describe(&self) -> String {
        format!("openai {}", self.settings.model)
    }
}

/// Reads a Retry-After header given in seconds. The HTTP-date form is ignored, so the backoff
/// applies then.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    text.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Cuts a response body for an error message, at a character boundary.
fn quote(text: &str) -> String {
    let text = text.trim();
    if text.len() <= MAX_QUOTED_BODY {
        return text.to_string();
    }
    let mut end = MAX_QUOTED_BODY;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
