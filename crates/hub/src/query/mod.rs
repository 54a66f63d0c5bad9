//! Natural-language queries: the planner, the parallel run of its steps, the per-app LLM contexts
//! of instruction steps, and each session's query history.
//!
//! Every piece of data that one app's output carries into another app goes through
//! [`Hub::check_transfer`] or [`Hub::call_tool`], so the flow guard and the broker decide it.

mod catalog;
mod context;
mod flows;
mod memory;
mod plan;
mod prompt;
mod run;
pub mod service;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bulkhead_llm::lexical::LexicalBackend;
use bulkhead_llm::openai::{OpenAiBackend, OpenAiSettings};
use bulkhead_llm::{ChatBackend, ChatReply, ChatRequest, LlmError, Message};
use bulkhead_proto::v1::query_event::Event;
use bulkhead_proto::v1::QueryEvent;
use tokio::sync::mpsc;
use tonic::Status;

use crate::config::{LlmBackendKind, LlmConfig};
use crate::error::HubError;
use crate::flow::Caller;
use crate::hub::Hub;
use catalog::{Catalog, Functions};
use memory::{Memory, QueryRecord};
use plan::Plan;

/// The maximum length of a query's text, in bytes.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;
/// The wait before the first retry of a failed LLM request. It doubles with each retry.
const LLM_BACKOFF: Duration = Duration::from_millis(250);

/// The event stream of one query, as the gRPC service sends it.
pub type EventSender = mpsc::Sender<Result<QueryEvent, Status>>;

/// The query machinery shared by every query: the hub, the backend and the histories.
pub struct QueryEngine {
    hub: Arc<Hub>,
    backend: Arc<dyn ChatBackend>,
    memory: Memory,
}

impl QueryEngine {
    /// Creates the engine on the hub's `[llm]` backend.
    pub fn new(hub: Arc<Hub>) -> Result<Arc<QueryEngine>, HubError> {
        let backend = hub.llm.clone();
        Ok(Arc::new(QueryEngine {
            hub,
            backend,
            memory: Memory::default(),
        }))
    }

    /// Plans and runs one query, sending its events. The error is also sent as the last event.
    pub async fn query(
        self: Arc<Self>,
        caller: Caller,
        text: String,
        apps: Vec<String>,
        events: EventSender,
    ) -> Result<(), HubError> {
        let outcome = self.plan_and_run(&caller, &text, &apps, &events).await;
        if let Err(error) = &outcome {
            tracing::warn!(principal = %caller.principal, session = %caller.session, %error, "query failed");
            let code = code_name(error.code());
            let event = bulkhead_proto::v1::QueryError {
                code,
                message: error.to_string(),
            };
            let _ = events
                .send(Ok(QueryEvent {
                    event: Some(Event::Error(event)),
                }))
                .await;
        }
        outcome
    }

    async fn plan_and_run(
        &self,
        caller: &Caller,
        text: &str,
        apps: &[String],
        events: &EventSender,
    ) -> Result<(), HubError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(HubError::InvalidQuery(
                "the query text is empty; write what you want to know".into(),
            ));
        }
        if text.len() > MAX_QUERY_BYTES {
            return Err(HubError::InvalidQuery(format!(
                "the query has {} bytes, above the maximum of {MAX_QUERY_BYTES}",
                text.len()
            )));
        }
        // A query without a session gets one of its own, so its steps still share provenance.
        let remembered = !caller.session.is_empty();
        let session = if remembered {
            caller.session.clone()
        } else {
            format!("query-{}", uuid::Uuid::new_v4())
        };
        let caller = Caller {
            principal: caller.principal.clone(),
            session,
        };
        let (history, number) = self
            .memory
            .history(&caller.principal, &caller.session)
            .await;

        let catalog = Arc::new(Catalog::gather(&self.hub, apps).await?);
        if catalog.apps.is_empty() {
            return Err(HubError::CannotPlan(
                "no app is available to the planner; register an app first".into(),
            ));
        }
        let run = Arc::new(QueryRun {
            hub: self.hub.clone(),
            backend: self.backend.clone(),
            caller,
            limits: self.hub.config.llm.clone(),
            events: events.clone(),
            llm_calls: AtomicU32::new(0),
        });
        let (plan, attempt) = plan_query(&run, &catalog, &history, text).await?;
        run.emit(Event::Plan(run::plan_event(&plan, attempt, number)))
            .await;

        let results = run::execute(&run, &catalog, &plan, &history).await;
        let answer = run::compose_answer(&plan, &results);
        if remembered {
            let record = QueryRecord {
                number,
                text: text.to_string(),
                steps: run::step_records(&plan, &results),
            };
            self.memory
                .remember(&run.caller.principal, &run.caller.session, record)
                .await;
        }
        let llm_calls = run.llm_calls.load(Ordering::Relaxed);
        run.emit(Event::Answer(bulkhead_proto::v1::Answer {
            text: answer,
            llm_calls,
        }))
        .await;
        Ok(())
    }
}

/// Spells a gRPC code as the protocol does, such as INVALID_ARGUMENT.
fn code_name(code: tonic::Code) -> String {
    let mut name = String::new();
    for (index, c) in format!("{code:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && index > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// Builds the backend that hub.toml's `[llm]` table names. The API key is read here, from the
/// environment variable that `api_key_env` names.
pub fn backend(config: &LlmConfig) -> Result<Arc<dyn ChatBackend>, HubError> {
    match config.backend {
        LlmBackendKind::Lexical => Ok(Arc::new(LexicalBackend)),
        LlmBackendKind::OpenAi => {
            let api_key = if config.api_key_env.is_empty() {
                None
            } else {
                let key = std::env::var(&config.api_key_env).map_err(|_| {
                    HubError::Llm(format!(
                        "the environment variable {} that [llm] api_key_env names is not set; set it for bulkheadd",
                        config.api_key_env
                    ))
                })?;
                Some(key)
            };
            let settings = OpenAiSettings {
                base_url: config.base_url.clone(),
                model: config.model.clone(),
                api_key,
                timeout: config.timeout,
                retries: config.retries,
                backoff: LLM_BACKOFF,
            };
            let backend =
                OpenAiBackend::new(settings).map_err(|error| HubError::Llm(error.to_string()))?;
            Ok(Arc::new(backend))
        }
    }
}

/// Asks the planner for a plan and validates it. A rejected plan gets one more try, with the
/// reason, and a second rejection ends the query.
async fn plan_query(
    run: &Arc<QueryRun>,
    catalog: &Catalog,
    history: &[QueryRecord],
    text: &str,
) -> Result<(Plan, u32), HubError> {
    let functions = Functions::for_planner(catalog);
    let mut messages = vec![
        Message::system(prompt::planner_system(catalog, history)),
        Message::user(text),
    ];
    let mut attempt = 1;
    loop {
        let request = ChatRequest {
            messages: messages.clone(),
            tools: functions.specs.clone(),
            max_tokens: None,
        };
        let reply = run.chat(&request).await?;
        let parsed = if reply.tool_calls.is_empty() {
            plan::parse(&reply.content, catalog, history)
        } else {
            plan::from_calls(&reply.tool_calls, &functions, catalog)
        };
        let error = match parsed {
            Ok(plan) => return Ok((plan, attempt)),
            Err(error) => error,
        };
        tracing::warn!(attempt, %error, "the planner's output was rejected");
        if attempt == 2 {
            return Err(HubError::PlanRejected(error.to_string()));
        }
        attempt += 1;
        messages.push(Message::assistant(&reply));
        for call in &reply.tool_calls {
            messages.push(Message::tool_result(&call.id, format!("rejected: {error}")));
        }
        messages.push(Message::user(prompt::replan_request(&error.to_string())));
    }
}

/// The state of one running query, shared by its steps.
pub(crate) struct QueryRun {
    hub: Arc<Hub>,
    backend: Arc<dyn ChatBackend>,
    caller: Caller,
    limits: LlmConfig,
    events: EventSender,
    llm_calls: AtomicU32,
}

impl QueryRun {
    /// Sends one LLM request, counting it against `[llm] max_calls`.
    async fn chat(&self, request: &ChatRequest) -> Result<ChatReply, HubError> {
        let made = self.llm_calls.fetch_add(1, Ordering::Relaxed);
        if made >= self.limits.max_calls {
            return Err(HubError::QueryLimit {
                what: "LLM calls",
                limit: self.limits.max_calls,
                key: "max_calls",
            });
        }
        self.backend
            .chat(request)
            .await
            .map_err(|error| match error {
                LlmError::CannotPlan { .. } => HubError::CannotPlan(error.to_string()),
                other => HubError::Llm(other.to_string()),
            })
    }

    async fn emit(&self, event: Event) {
        // A client that went away stops reading, and the query still finishes and is remembered.
        let _ = self
            .events
            .send(Ok(QueryEvent { event: Some(event) }))
            .await;
    }
}
