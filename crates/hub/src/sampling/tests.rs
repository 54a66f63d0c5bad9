use std::sync::Mutex;

use bulkhead_llm::lexical::LexicalBackend;
use bulkhead_llm::{ChatReply, ChatRequest};
use bulkhead_proto::v1::{SamplingContent, SamplingMessage};

use super::*;

/// A backend that records each request and replies with fixed text.
#[derive(Default)]
struct Recording {
    requests: Mutex<Vec<ChatRequest>>,
}

#[async_trait::async_trait]
impl ChatBackend for Recording {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatReply, LlmError> {
        self.requests.lock().expect("lock").push(request.clone());
        Ok(ChatReply { content: "a haiku".into(), tool_calls: Vec::new() })
    }

    fn describe(&self) -> String {
        "recording".into()
    }
}

fn text(role: &str, text: &str) -> SamplingMessage {
    SamplingMessage {
        role: role.into(),
        content: vec![SamplingContent { r#type: "text".into(), text: text.into() }],
    }
}

fn ask(id: u64, messages: Vec<SamplingMessage>) -> SpokeAsk {
    let request = SamplingAsk { messages, system_prompt: "Be brief.".into(), max_tokens: 50 };
    SpokeAsk { id, ask: Some(Ask::Sampling(request)) }
}

fn sampler(per_minute: u32, backend: Arc<dyn ChatBackend>) -> (Sampler, tempfile::TempDir) {
    let state = tempfile::tempdir().expect("temp dir");
    let audit = AuditLog::open(state.path(), false).expect("audit log");
    let config = LlmConfig { sampling_per_minute: per_minute, ..LlmConfig::default() };
    (Sampler::new(&config, backend, audit), state)
}

fn audit_records(state: &tempfile::TempDir) -> Vec<Value> {
    let text = std::fs::read_to_string(state.path().join(crate::audit::FILE_NAME)).expect("audit log");
    text.lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON record"))
        .filter(|record| record["kind"] == "sampling")
        .map(|record| record["fields"].clone())
        .collect()
}

fn rejected(answer: &AskAnswer) -> &AskRejected {
    match &answer.answer {
        Some(Answer::Rejected(rejected)) => rejected,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn chat_request_keeps_app_fields() {
    let Some(Ask::Sampling(request)) = ask(1, vec![text("user", "Write"), text("assistant", "Sure"), text("user", "Now")]).ask
    else {
        unreachable!()
    };
    let chat = convert::chat_request(&request).expect("valid");
    let roles: Vec<_> = chat.messages.iter().map(|message| message.role).collect();
    assert_eq!(roles, [bulkhead_llm::Role::System, bulkhead_llm::Role::User, bulkhead_llm::Role::Assistant, bulkhead_llm::Role::User]);
    assert_eq!(chat.messages[0].content, "Be brief.");
    assert_eq!(chat.messages[3].content, "Now");
    assert!(chat.tools.is_empty());
    assert_eq!(chat.max_tokens, Some(50));
}

#[test]
fn chat_request_rejects_image_and_bad_role() {
    let image = SamplingMessage {
        role: "user".into(),
        content: vec![SamplingContent { r#type: "image".into(), text: String::new() }],
    };
    let request = SamplingAsk { messages: vec![text("user", "look"), image], ..SamplingAsk::default() };
    let error = convert::chat_request(&request).expect_err("an image");
    assert!(matches!(error, SamplingError::UnsupportedContent { index: 1, .. }), "{error}");
    assert!(error.to_string().contains("\"image\""), "{error}");

    let request = SamplingAsk { messages: vec![text("system", "obey")], ..SamplingAsk::default() };
    let error = convert::chat_request(&request).expect_err("a system role");
    assert!(error.to_string().contains("\"system\""), "{error}");

    let request = SamplingAsk { messages: vec![text("assistant", "hi")], ..SamplingAsk::default() };
    let error = convert::chat_request(&request).expect_err("no user message");
    assert!(matches!(error, SamplingError::NoUserMessage), "{error}");

    let huge = "x".repeat(MAX_SAMPLING_BYTES + 1);
    let request = SamplingAsk { messages: vec![text("user", &huge)], ..SamplingAsk::default() };
    let error = convert::chat_request(&request).expect_err("too large");
    assert!(matches!(error, SamplingError::TooLarge { .. }), "{error}");
}

#[tokio::test]
async fn answer_carries_reply_and_is_audited() {
    let backend = Arc::new(Recording::default());
    let (sampler, state) = sampler(5, backend.clone());
    let answer = sampler.answer("notes", ask(7, vec![text("user", "secret words")])).await;
    assert_eq!(answer.id, 7);
    let Some(Answer::Sampling(reply)) = answer.answer else { panic!("expected a reply, got {answer:?}") };
    assert_eq!(reply.text, "a haiku");
    assert_eq!(reply.model, "recording");
    assert_eq!(backend.requests.lock().expect("lock").len(), 1);

    let records = audit_records(&state);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["app"], "notes");
    assert_eq!(records[0]["outcome"], "answered");
    assert_eq!(records[0]["messages"], 1);
    assert!(!records[0].to_string().contains("secret words"), "{}", records[0]);
}

#[tokio::test]
async fn rate_limit_is_per_app_and_skips_backend() {
    let backend = Arc::new(Recording::default());
    let (sampler, state) = sampler(2, backend.clone());
    for id in 1..=2 {
        let answer = sampler.answer("notes", ask(id, vec![text("user", "hi")])).await;
        assert!(matches!(answer.answer, Some(Answer::Sampling(_))), "{answer:?}");
    }
    let answer = sampler.answer("notes", ask(3, vec![text("user", "hi")])).await;
    let rejection = rejected(&answer);
    assert_eq!(rejection.failure(), AskFailure::RateLimited);
    assert!(rejection.message.contains("sampling_per_minute"), "{}", rejection.message);
    assert!(rejection.message.contains("limit of 2"), "{}", rejection.message);
    assert_eq!(backend.requests.lock().expect("lock").len(), 2);

    let answer = sampler.answer("calendar", ask(4, vec![text("user", "hi")])).await;
    assert!(matches!(answer.answer, Some(Answer::Sampling(_))), "{answer:?}");
    let outcomes: Vec<_> = audit_records(&state).iter().map(|record| record["outcome"].clone()).collect();
    assert_eq!(outcomes, ["answered", "answered", "rate_limited", "answered"]);
}

#[tokio::test]
async fn zero_per_minute_turns_sampling_off() {
    let backend = Arc::new(Recording::default());
    let (sampler, state) = sampler(0, backend.clone());
    let answer = sampler.answer("notes", ask(1, vec![text("user", "hi")])).await;
    let rejection = rejected(&answer);
    assert_eq!(rejection.failure(), AskFailure::Disabled);
    assert!(rejection.message.contains("sampling_per_minute is 0"), "{}", rejection.message);
    assert!(backend.requests.lock().expect("lock").is_empty());
    assert_eq!(audit_records(&state)[0]["outcome"], "disabled");
}

#[tokio::test]
async fn lexical_backend_error_omits_text() {
    let (sampler, state) = sampler(5, Arc::new(LexicalBackend));
    let answer = sampler.answer("notes", ask(1, vec![text("user", "secret words")])).await;
    let rejection = rejected(&answer);
    assert_eq!(rejection.failure(), AskFailure::BackendFailed);
    assert!(rejection.message.contains("lexical backend cannot answer free text"), "{}", rejection.message);
    assert!(rejection.message.contains("backend = \"openai\""), "{}", rejection.message);
    assert!(!rejection.message.contains("secret words"), "{}", rejection.message);
    assert!(!rejection.message.contains("register an app"), "{}", rejection.message);
    assert_eq!(audit_records(&state)[0]["outcome"], "failed");
}

#[test]
fn ask_timeout_covers_every_attempt() {
    let config = LlmConfig { timeout: Duration::from_secs(20), retries: 2, ..LlmConfig::default() };
    assert_eq!(ask_timeout_ms(&config), 3 * 20_000 + 2 * 30_000 + 10_000);
}
