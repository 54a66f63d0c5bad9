//! The texts the hub writes for the planner and for each app's context.
//!
//! The planner's prompt contains only trusted text: the user's query, the session's earlier
//! queries and the steps they ran, and the descriptions and tool schemas of the registered apps,
//! which an operator approved. Step outputs and tool results never enter it.

use std::fmt::Write as _;

use bulkhead_llm::lexical::REQUEST_APP_TOOL;
use bulkhead_llm::ToolSpec;
use serde_json::json;

use super::catalog::{schema_value, Catalog};
use super::memory::QueryRecord;
use crate::manifest::Manifest;

const PLANNER_RULES: &str = "You are the planner of bulkhead, a hub that runs apps in isolation. \
Answer the user's query with a plan, written as one JSON object and nothing else:
{\"steps\": [{\"id\": \"s1\", \"app\": \"APP\", \"tool\": \"TOOL\", \"arguments\": {}},
           {\"id\": \"s2\", \"app\": \"APP\", \"instruction\": \"TEXT\", \"inputs\": [\"s1\"]}],
 \"answer\": \"TEXT with {{s1}} and {{s2}}\"}
Rules:
- Each step names one app of the catalog below, and either one of its tools with arguments that \
match the tool's schema, or an instruction in plain words that the app's own assistant carries \
out with that app's tools.
- A step may use the output of another step: list its id in \"inputs\", and write {{ID}} where the \
output belongs in an argument or in the instruction. {{qN.ID}} is step ID of the session's earlier \
query number N.
- Steps that use no output of each other run at the same time.
- \"answer\" is shown to the user with every {{ID}} replaced by that step's output. Leave it out \
to show the output of every step that no other step uses.
- You never see step outputs, so never guess them.";

/// Builds the planner's system message.
pub fn planner_system(catalog: &Catalog, history: &[QueryRecord]) -> String {
    let mut text = String::from(PLANNER_RULES);
    text.push_str("\n\nCatalog of apps:\n");
    for app in &catalog.apps {
        let _ = writeln!(
            text,
            "- app {}: {}",
            app.name(),
            app.entry.manifest.description
        );
        for tool in &app.tools {
            let schema = schema_value(tool);
            let _ = writeln!(
                text,
                "  - tool {}: {} Arguments schema: {schema}",
                tool.name,
                tool.description.trim()
            );
        }
    }
    if !history.is_empty() {
        text.push_str("\nEarlier queries of this session, oldest first:\n");
        for query in history {
            let steps: Vec<String> = query
                .steps
                .iter()
                .map(|step| {
                    format!(
                        "{} {}/{}{}",
                        step.id,
                        step.app,
                        step.action,
                        if step.ok { "" } else { " (failed)" }
                    )
                })
                .collect();
            let _ = writeln!(
                text,
                "- q{}: {:?}; steps: {}",
                query.number,
                query.text,
                steps.join(", ")
            );
        }
    }
    text
}

/// Builds the message that requests a new plan from the planner after the hub rejected one.
pub fn replan_request(error: &str) -> String {
    format!("The hub rejected that plan: {error}. Write the whole plan again as one JSON object.")
}

/// Builds the system message of an app's own context.
pub fn context_system(manifest: &Manifest) -> String {
    format!(
        "You are the assistant of the app {name} inside bulkhead. The app: {description}\n\
         Carry out the instruction in the user message with the app's tools, then reply with the \
         result in plain text. To use another app, call {REQUEST_APP_TOOL} with its name and \
         either a tool with arguments or an instruction. The hub decides whether the request may \
         go ahead, and may deny it.",
        name = manifest.name,
        description = manifest.description,
    )
}

/// Builds the user message of an app's context: the instruction, and the inputs it uses without a
/// placeholder.
pub fn context_user(instruction: &str, extra_inputs: &[(String, String, String)]) -> String {
    let mut text = instruction.to_string();
    for (reference, app, output) in extra_inputs {
        let _ = write!(text, "\n\nInput {reference} (from app {app}):\n{output}");
    }
    text
}

/// The virtual tool through which an app's context calls a tool of another app.
pub fn request_app_spec() -> ToolSpec {
    ToolSpec {
        name: REQUEST_APP_TOOL.to_string(),
        description: "Asks another app for something. Give app and either tool with arguments, to call one of its \
                      tools, or instruction, for that app's own assistant. The hub decides whether the request may \
                      go ahead and whether its result may come back."
            .to_string(),
        parameters: json!({
            "type": "object",
            "properties": {
                "app": {"type": "string", "description": "The other app's name."},
                "tool": {"type": "string", "description": "The tool to call."},
                "arguments": {"type": "object", "description": "The tool's arguments."},
                "instruction": {"type": "string", "description": "What the other app's assistant should do."}
            },
            "required": ["app"]
        }),
    }
}
