//! hub.toml's `[llm]` table: the chat backend of natural-language queries and its limits.

use std::time::Duration;

use serde::Deserialize;

use crate::manifest::validate::{check_range, invalid, show_duration, Invalid};
use crate::units::parse_duration;

/// The chat backend that plans queries and runs instruction steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmBackendKind {
    /// The offline BM25 planner, which needs no model.
    Lexical,
    /// An OpenAI-compatible chat-completions endpoint.
    OpenAi,
}

/// The query settings of hub.toml's `[llm]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmConfig {
    pub backend: LlmBackendKind,
    /// The API root of an OpenAI-compatible endpoint, such as "http://127.0.0.1:8000/v1".
    pub base_url: String,
    pub model: String,
    /// The environment variable of bulkheadd that contains the API key. Empty sends no key.
    pub api_key_env: String,
    /// The deadline of one HTTP attempt.
    pub timeout: Duration,
    /// Attempts after the first one, on HTTP 429, 5xx and connection failures.
    pub retries: u32,
    /// The maximum nesting depth of app contexts through request_app. The plan's steps are depth 1.
    pub max_depth: u32,
    /// LLM calls one query may make, counting the planner's.
    pub max_calls: u32,
    /// The MCP sampling requests that one app may send per minute. 0 turns sampling off.
    pub sampling_per_minute: u32,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            backend: LlmBackendKind::Lexical,
            base_url: String::new(),
            model: String::new(),
            api_key_env: String::new(),
            timeout: Duration::from_secs(60),
            retries: 2,
            max_depth: 3,
            max_calls: 16,
            sampling_per_minute: 10,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLlm {
    backend: Option<String>,
    base_url: Option<String>,
    model: Option<String>,
    api_key_env: Option<String>,
    timeout: Option<String>,
    retries: Option<i64>,
    max_depth: Option<i64>,
    max_calls: Option<i64>,
    sampling_per_minute: Option<i64>,
}

const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// The highest `sampling_per_minute`: ten requests a second from one app.
const MAX_SAMPLING_PER_MINUTE: i64 = 600;

pub(super) fn check_llm(raw: RawLlm) -> Result<LlmConfig, Invalid> {
    let defaults = LlmConfig::default();
    let backend = match raw.backend.as_deref() {
        None | Some("lexical") => LlmBackendKind::Lexical,
        Some("openai") => LlmBackendKind::OpenAi,
        Some(other) => {
            return Err(invalid(
                "llm.backend",
                format!("unknown backend {other:?}; use \"lexical\" or \"openai\""),
            ));
        }
    };
    let base_url = raw.base_url.unwrap_or_default().trim().to_string();
    let model = raw.model.unwrap_or_default().trim().to_string();
    if backend == LlmBackendKind::OpenAi {
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(invalid(
                "llm.base_url",
                format!(
                    "{base_url:?} is not an http:// or https:// URL; the openai backend needs the API root, \
                     such as \"http://127.0.0.1:8000/v1\""
                ),
            ));
        }
        if model.is_empty() {
            return Err(invalid(
                "llm.model",
                "is empty; the openai backend needs the name of the model the endpoint serves",
            ));
        }
    }
    let api_key_env = raw.api_key_env.unwrap_or_default();
    let valid_env = api_key_env
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !api_key_env.starts_with(|c: char| c.is_ascii_digit());
    if !valid_env {
        return Err(invalid(
            "llm.api_key_env",
            format!("{api_key_env:?} is not an environment variable name; use letters, digits and _, such as \"OPENAI_API_KEY\""),
        ));
    }
    let timeout = match raw.timeout {
        Some(text) => {
            let duration =
                parse_duration(&text).map_err(|error| invalid("llm.timeout", error.to_string()))?;
            check_range(
                "llm.timeout",
                duration,
                Duration::from_millis(100),
                MAX_TIMEOUT,
                show_duration,
            )?
        }
        None => defaults.timeout,
    };
    let count =
        |key: &str, value: Option<i64>, default: u32, min: i64, max: i64| -> Result<u32, Invalid> {
            let value = check_range(key, value.unwrap_or(i64::from(default)), min, max, |n| {
                n.to_string()
            })?;
            Ok(u32::try_from(value).unwrap_or(default))
        };
    Ok(LlmConfig {
        backend,
        base_url,
        model,
        api_key_env,
        timeout,
        retries: count("llm.retries", raw.retries, defaults.retries, 0, 10)?,
        max_depth: count("llm.max_depth", raw.max_depth, defaults.max_depth, 1, 10)?,
        max_calls: count("llm.max_calls", raw.max_calls, defaults.max_calls, 1, 1000)?,
        sampling_per_minute: count(
            "llm.sampling_per_minute",
            raw.sampling_per_minute,
            defaults.sampling_per_minute,
            0,
            MAX_SAMPLING_PER_MINUTE,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawLlm {
        toml::from_str(text).expect("valid TOML")
    }

    #[test]
    fn defaults_are_lexical_with_limits() {
        let config = check_llm(RawLlm::default()).expect("defaults");
        assert_eq!(config, LlmConfig::default());
        assert_eq!(config.max_depth, 3);
        assert_eq!(config.max_calls, 16);
        assert_eq!(config.sampling_per_minute, 10);
    }

    #[test]
    fn sampling_per_minute_accepts_zero_to_max() {
        for value in [0, 1, 600] {
            let config = check_llm(raw(&format!("sampling_per_minute = {value}"))).expect("in range");
            assert_eq!(i64::from(config.sampling_per_minute), value);
        }
    }

    #[test]
    fn sampling_per_minute_out_of_range_is_named() {
        for text in ["sampling_per_minute = -1", "sampling_per_minute = 601"] {
            let error = check_llm(raw(text)).expect_err(text);
            assert_eq!(error.key, "llm.sampling_per_minute", "{text}");
            let value = text.rsplit(' ').next().expect("a value");
            assert!(error.reason.contains(value), "{}", error.reason);
        }
        let error = toml::from_str::<RawLlm>("sampling_per_minute = \"ten\"").expect_err("a string");
        assert!(error.to_string().contains("sampling_per_minute"), "{error}");
    }

    #[test]
    fn openai_needs_url_and_model() {
        let error = check_llm(raw("backend = \"openai\"\nmodel = \"m\"")).expect_err("no URL");
        assert_eq!(error.key, "llm.base_url");
        let error = check_llm(raw(
            "backend = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"",
        ))
        .expect_err("no model");
        assert_eq!(error.key, "llm.model");
        let config = check_llm(raw("backend = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\ntimeout = \"5s\""))
            .expect("valid");
        assert_eq!(config.backend, LlmBackendKind::OpenAi);
        assert_eq!(config.timeout, Duration::from_secs(5));
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases = [
            ("backend = \"gpt\"", "llm.backend"),
            ("api_key_env = \"MY-KEY\"", "llm.api_key_env"),
            ("max_depth = 0", "llm.max_depth"),
            ("max_calls = 0", "llm.max_calls"),
            ("retries = 11", "llm.retries"),
            ("sampling_per_minute = 1000", "llm.sampling_per_minute"),
            ("timeout = \"1ms\"", "llm.timeout"),
        ];
        for (text, key) in cases {
            let error = check_llm(raw(text)).expect_err(text);
            assert_eq!(error.key, key, "{text}");
        }
    }
}
