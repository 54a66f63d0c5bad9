//! The LLM context of one app, for an instruction step or a nested request.
//!
//! The hub runs the context, because the spoke has no network and no key. The context contains only
//! its own app's description and tools, plus the virtual tool request_app. A request_app call is a
//! cross-app call: the hub decides, with the full arguments, before the target app runs, and
//! decides again before the result flows back into the requesting context.

use std::sync::Arc;

use bulkhead_llm::lexical::REQUEST_APP_TOOL;
use bulkhead_llm::{ChatRequest, Message, ToolCall};
use serde_json::{json, Value};

use super::catalog::Functions;
use super::prompt;
use super::run::INSTRUCTION_LABEL;
use super::QueryRun;
use crate::error::HubError;
use crate::flow::guard::string_leaves;
use crate::hub::Carried;
use crate::registry::AppEntry;
use crate::service::result_text;

/// Runs `instruction` in the context of the app of `entry` until the model replies without tool
/// calls, and returns that reply. `depth` is 1 for a step of the plan and grows by one with each
/// nested request_app instruction.
pub async fn run_context(
    run: &Arc<QueryRun>,
    step: &str,
    entry: &AppEntry,
    instruction: &str,
    depth: u32,
) -> Result<String, HubError> {
    if depth > run.limits.max_depth {
        return Err(HubError::QueryLimit {
            what: "nested app contexts",
            limit: run.limits.max_depth,
            key: "max_depth",
        });
    }
    let manifest = &entry.manifest;
    let mut functions = Functions::default();
    for tool in run.hub.pinned_tools(entry).await? {
        if manifest.is_exposed(&tool.name) {
            let description = tool.description.clone();
            functions.add(&manifest.name, "", &tool, description);
        }
    }
    functions.add_spec(prompt::request_app_spec());

    let mut messages = vec![
        Message::system(prompt::context_system(manifest)),
        Message::user(instruction),
    ];
    loop {
        let request = ChatRequest {
            messages: messages.clone(),
            tools: functions.specs.clone(),
            max_tokens: None,
        };
        let reply = run.chat(&request).await?;
        if reply.tool_calls.is_empty() {
            return Ok(reply.content);
        }
        messages.push(Message::assistant(&reply));
        for call in &reply.tool_calls {
            let result = if call.name == REQUEST_APP_TOOL {
                request_app(run, step, entry, call, depth).await
            } else {
                own_tool(run, entry, &functions, call).await
            };
            messages.push(Message::tool_result(&call.id, result));
        }
    }
}

/// Calls one of the context's own tools and returns the text the model gets.
async fn own_tool(
    run: &QueryRun,
    entry: &AppEntry,
    functions: &Functions,
    call: &ToolCall,
) -> String {
    let Some((_, tool)) = functions.target(&call.name) else {
        let known: Vec<&str> = functions
            .specs
            .iter()
            .map(|spec| spec.name.as_str())
            .collect();
        return format!(
            "error: unknown tool {:?}; the tools are {known:?}",
            call.name
        );
    };
    call_text(run, &entry.manifest.name, tool, call.arguments.to_string()).await
}

async fn call_text(run: &QueryRun, app: &str, tool: &str, arguments_json: String) -> String {
    match run
        .hub
        .call_tool(&run.caller, app, tool, arguments_json)
        .await
    {
        Ok(outcome) if outcome.is_error => format!("error: {}", result_text(&outcome.result_json)),
        Ok(outcome) => result_text(&outcome.result_json),
        Err(error) => format!("error: {error}"),
    }
}

/// Handles request_app(app, tool, arguments) or request_app(app, instruction) from the context of
/// `from`, and returns the text the model gets: the result, or why there is none.
async fn request_app(
    run: &Arc<QueryRun>,
    step: &str,
    from: &AppEntry,
    call: &ToolCall,
    depth: u32,
) -> String {
    let arguments = &call.arguments;
    let Some(target) = arguments.get("app").and_then(Value::as_str) else {
        return "error: request_app needs \"app\", the name of the other app".to_string();
    };
    let tool = arguments
        .get("tool")
        .and_then(Value::as_str)
        .filter(|tool| !tool.is_empty());
    let instruction = arguments
        .get("instruction")
        .and_then(Value::as_str)
        .filter(|text| !text.trim().is_empty());
    let from_name = from.manifest.name.clone();
    let entry = match run.hub.app(target).await {
        Ok(entry) => entry,
        Err(error) => return format!("error: {error}"),
    };

    let (label, outcome) = match (tool, instruction) {
        (Some(tool), None) => {
            if !entry.manifest.is_exposed(tool) {
                return format!("error: app {target:?} exposes no tool {tool:?}");
            }
            let tool_arguments = arguments.get("arguments").cloned().unwrap_or_else(|| json!({}));
            if !tool_arguments.is_object() {
                return "error: request_app \"arguments\" must be a JSON object".to_string();
            }
            let payload = tool_arguments.to_string();
            let carried = whole(&from_name, &tool_arguments);
            if let Err(error) = run.transfer(step, target, tool, &payload, &carried, false).await {
                return format!("denied: {error}");
            }
            (format!("{target}/{tool}"), Ok(call_text(run, target, tool, payload).await))
        }
        (None, Some(text)) => {
            if depth >= run.limits.max_depth {
                let error = HubError::QueryLimit { what: "nested app contexts", limit: run.limits.max_depth, key: "max_depth" };
                return format!("error: {error}");
            }
            let payload = json!({ "instruction": text });
            let carried = whole(&from_name, &payload);
            if let Err(error) = run.transfer(step, target, INSTRUCTION_LABEL, &payload.to_string(), &carried, false).await {
                return format!("denied: {error}");
            }
            let nested = Box::pin(run_context(run, step, &entry, text, depth + 1)).await;
            (format!("{target} {INSTRUCTION_LABEL}"), nested)
        }
        _ => return "error: request_app needs either \"tool\" with \"arguments\", or \"instruction\"".to_string(),
    };
    let text = match outcome {
        Ok(text) => text,
        Err(error) => return format!("error: {error}"),
    };
    if target == from_name {
        return text;
    }
    let payload = json!({ "result": text });
    let back = format!("(result of {label})");
    let carried = whole(target, &payload);
    if let Err(error) = run.transfer(step, &from_name, &back, &payload.to_string(), &carried, false).await {
        return format!("withheld: {error}");
    }
    text
}

/// Marks every string of a payload as data of `app`: all that a context writes comes from its app.
fn whole(app: &str, payload: &Value) -> Vec<Carried> {
    let fields = string_leaves(payload).into_iter().map(|(pointer, _)| pointer).collect();
    vec![Carried { app: app.to_string(), fields }]
}
