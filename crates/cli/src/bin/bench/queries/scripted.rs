//! A scripted OpenAI-compatible chat-completions server on 127.0.0.1 for the query benchmark. It
//! waits a fixed latency before each reply, and reads what to reply from the conversation itself:
//!
//! - a user message `PLAN {json}` gets the JSON as the reply text, for the hub's planner;
//! - a user message `STEPS [[call, …], …]` gets the k-th batch of tool calls, where k counts the
//!   assistant messages since that user message, and then the last tool results as text.
//!
//! Each call is `{"name": …, "arguments": {…}}`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

struct Server {
    latency: Duration,
    requests: AtomicU64,
}

/// The running server. Dropping it stops it.
pub struct ScriptedLlm {
    base_url: String,
    server: Arc<Server>,
    task: JoinHandle<()>,
}

impl ScriptedLlm {
    pub async fn start(latency: Duration) -> Result<ScriptedLlm> {
        let server = Arc::new(Server {
            latency,
            requests: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("failed to bind 127.0.0.1:0")?;
        let address = listener
            .local_addr()
            .context("failed to read the scripted server's address")?;
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("bench: the scripted LLM server failed: {error}");
            }
        });
        Ok(ScriptedLlm {
            base_url: format!("http://{address}/v1"),
            server,
            task,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Returns the number of requests served so far.
    pub fn requests(&self) -> u64 {
        self.server.requests.load(Ordering::Relaxed)
    }
}

impl Drop for ScriptedLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn complete(
    State(server): State<Arc<Server>>,
    Json(request): Json<Value>,
) -> (StatusCode, Json<Value>) {
    server.requests.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(server.latency).await;
    let messages = request
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match reply(&messages) {
        Ok(message) => {
            let body = json!({"id": "bench", "object": "chat.completion", "choices": [{"index": 0, "message": message}]});
            (StatusCode::OK, Json(body))
        }
        Err(reason) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"message": reason}})),
        ),
    }
}

/// Builds the assistant message for a conversation, as the module documentation describes.
pub fn reply(messages: &[Value]) -> Result<Value, String> {
    let role = |message: &Value| {
        message
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let last_user = messages
        .iter()
        .rposition(|message| role(message) == "user")
        .ok_or("the request has no user message")?;
    let text = messages[last_user]
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let after = &messages[last_user + 1..];
    if let Some(plan) = text.strip_prefix("PLAN ") {
        return Ok(json!({"role": "assistant", "content": plan}));
    }
    let Some(steps) = text.strip_prefix("STEPS ") else {
        return Err(format!(
            "the user message starts with neither PLAN nor STEPS: {text:?}"
        ));
    };
    let batches: Vec<Value> =
        serde_json::from_str(steps).map_err(|error| format!("invalid STEPS: {error}"))?;
    let turn = after
        .iter()
        .filter(|message| role(message) == "assistant")
        .count();
    if let Some(batch) = batches.get(turn) {
        let calls: Vec<Value> = batch
            .as_array()
            .ok_or("each STEPS batch must be an array")?
            .iter()
            .enumerate()
            .map(|(index, call)| {
                json!({"id": format!("call_{turn}_{index}"), "type": "function",
                       "function": {"name": call["name"], "arguments": call["arguments"].to_string()}})
            })
            .collect();
        return Ok(json!({"role": "assistant", "content": null, "tool_calls": calls}));
    }
    let results: Vec<&str> = after
        .iter()
        .filter(|message| role(message) == "tool")
        .filter_map(|message| message.get("content").and_then(Value::as_str))
        .collect();
    Ok(json!({"role": "assistant", "content": results.join("\n")}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_is_replied_as_text() {
        let messages = [
            json!({"role": "system", "content": "x"}),
            json!({"role": "user", "content": "PLAN {\"steps\": []}"}),
        ];
        assert_eq!(
            reply(&messages).expect("reply")["content"],
            "{\"steps\": []}"
        );
    }

    #[test]
    fn steps_are_replied_batch_by_batch() {
        let user =
            json!({"role": "user", "content": "STEPS [[{\"name\": \"a\", \"arguments\": {}}]]"});
        let first = reply(std::slice::from_ref(&user)).expect("first turn");
        assert_eq!(first["tool_calls"][0]["function"]["name"], "a");
        let messages = [
            user,
            first,
            json!({"role": "tool", "content": "result a", "tool_call_id": "call_0_0"}),
        ];
        assert_eq!(reply(&messages).expect("final turn")["content"], "result a");
    }
}
