//! The client against a local chat-completions server on 127.0.0.1 that replays canned responses.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use super::{OpenAiBackend, OpenAiSettings};
use crate::{ChatBackend, ChatRequest, LlmError, Message};

/// One canned response: status, extra header and body.
type Canned = (u16, Option<(&'static str, &'static str)>, String);

#[derive(Default)]
struct Server {
    responses: Mutex<VecDeque<Canned>>,
    /// Each request's body and Authorization header.
    requests: Mutex<Vec<(Value, Option<String>)>>,
}

async fn complete(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, HeaderMap, String) {
    let auth = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let parsed = serde_json::from_str(&body).unwrap_or(Value::Null);
    server.requests.lock().expect("lock").push((parsed, auth));
    let next = server.responses.lock().expect("lock").pop_front();
    let (status, header, body) = next.unwrap_or((500, None, "no canned response left".into()));
    let mut reply_headers = HeaderMap::new();
    if let Some((name, value)) = header {
        reply_headers.insert(name, value.parse().expect("header value"));
    }
    (
        StatusCode::from_u16(status).expect("status"),
        reply_headers,
        body,
    )
}

/// Starts the server on 127.0.0.1 port 0 and returns it with its base URL.
async fn serve(responses: Vec<Canned>) -> (Arc<Server>, String) {
    let server = Arc::new(Server {
        responses: Mutex::new(responses.into()),
        ..Server::default()
    });
    let app = Router::new()
        .route("/v1/chat/completions", post(complete))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (server, format!("http://{address}/v1"))
}

fn settings(base_url: String, retries: u32) -> OpenAiSettings {
    OpenAiSettings {
        base_url,
        model: "test-model".into(),
        api_key: Some("secret-key".into()),
        timeout: Duration::from_secs(5),
        retries,
        backoff: Duration::from_millis(10),
    }
}

fn text_reply(text: &str) -> Canned {
    (
        200,
        None,
        json!({"choices": [{"message": {"role": "assistant", "content": text}}]}).to_string(),
    )
}

fn request() -> ChatRequest {
    ChatRequest {
        messages: vec![Message::user("hello")],
        tools: Vec::new(),
        max_tokens: None,
    }
}

#[tokio::test]
async fn sends_model_messages_and_key() {
    let (server, url) = serve(vec![text_reply("hi")]).await;
    let backend = OpenAiBackend::new(settings(url, 0)).expect("backend");
    let reply = backend.chat(&request()).await.expect("reply");
    assert_eq!(reply.content, "hi");
    let requests = server.requests.lock().expect("lock");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].0["model"], "test-model");
    assert_eq!(requests[0].0["messages"][0]["content"], "hello");
    assert_eq!(requests[0].1.as_deref(), Some("Bearer secret-key"));
}

#[tokio::test]
async fn retries_429_and_5xx_then_succeeds() {
    let responses = vec![
        (429, Some(("retry-after", "0")), "slow down".to_string()),
        (503, None, "overloaded".to_string()),
        text_reply("done"),
    ];
    let (server, url) = serve(responses).await;
    let backend = OpenAiBackend::new(settings(url, 2)).expect("backend");
    let reply = backend.chat(&request()).await.expect("reply after retries");
    assert_eq!(reply.content, "done");
    assert_eq!(server.requests.lock().expect("lock").len(), 3);
}

#[tokio::test]
async fn gives_up_after_the_retries() {
    let responses = vec![
        (500, None, "boom 1".to_string()),
        (502, None, "boom 2".to_string()),
        text_reply("late"),
    ];
    let (server, url) = serve(responses).await;
    let backend = OpenAiBackend::new(settings(url, 1)).expect("backend");
    let error = backend.chat(&request()).await.expect_err("two failures");
    assert!(
        matches!(error, LlmError::Status { status: 502, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("boom 2"), "{error}");
    assert_eq!(server.requests.lock().expect("lock").len(), 2);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let responses = vec![(400, None, "bad request".to_string()), text_reply("never")];
    let (server, url) = serve(responses).await;
    let backend = OpenAiBackend::new(settings(url, 3)).expect("backend");
    let error = backend.chat(&request()).await.expect_err("400");
    assert!(
        matches!(error, LlmError::Status { status: 400, .. }),
        "{error}"
    );
    assert_eq!(server.requests.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn invalid_body_is_a_clear_error() {
    let (_server, url) = serve(vec![(200, None, "{\"choices\": []}".to_string())]).await;
    let backend = OpenAiBackend::new(settings(url, 0)).expect("backend");
    let error = backend.chat(&request()).await.expect_err("no choices");
    assert!(error.to_string().contains("invalid response"), "{error}");
}

#[tokio::test]
async fn unreachable_endpoint_names_the_url() {
    // Bind and drop a listener so that the port is closed.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let backend = OpenAiBackend::new(settings(format!("http://{address}/v1"), 1)).expect("backend");
    let error = backend.chat(&request()).await.expect_err("closed port");
    assert!(matches!(error, LlmError::Unreachable { .. }), "{error}");
    assert!(error.to_string().contains(&address.to_string()), "{error}");
}

#[test]
fn settings_are_checked() {
    let mut bad = settings("127.0.0.1:8000/v1".into(), 0);
    assert!(
        OpenAiBackend::new(bad.clone()).is_err_and(|error| error.to_string().contains("http://"))
    );
    bad.base_url = "http://127.0.0.1:8000/v1".into();
    bad.model.clear();
    assert!(
        OpenAiBackend::new(bad).is_err_and(|error| error.to_string().contains("model is empty"))
    );
}
