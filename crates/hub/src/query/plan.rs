//! The planner's output: parsing, validation and the step graph.
//!
//! A plan is one JSON object:
//!
//! ```json
//! {"steps": [{"id": "s1", "app": "quick_ride", "tool": "estimate", "arguments": {"start": "A", "end": "B"}},
//!            {"id": "s2", "app": "notes", "instruction": "Save this fare: {{s1}}", "inputs": ["s1"]}],
//!  "answer": "The fare is {{s1}}."}
//! ```
//!
//! A step uses an earlier output through `inputs` or a `{{ID}}` placeholder in a string argument or
//! the instruction. `qN.ID` names step ID of the session's query number N.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::catalog::{Catalog, Functions};
use super::memory::QueryRecord;

/// The maximum number of steps in one plan.
pub const MAX_STEPS: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Tool { tool: String, arguments: Value },
    Instruction(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub id: String,
    pub app: String,
    pub action: Action,
    /// Every output the step uses: declared inputs and placeholders, each once.
    pub inputs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// The answer template, with `{{ID}}` placeholders.
    pub answer: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("the plan is not valid JSON: {0}")]
    Json(String),
    #[error("the plan has no steps")]
    Empty,
    #[error("the plan has {0} steps, above the maximum of {MAX_STEPS}")]
    TooManySteps(usize),
    #[error("step {step}: {reason}")]
    Step { step: String, reason: String },
    #[error("step {step} names the unknown app {app:?}; the apps are {known:?}")]
    UnknownApp {
        step: String,
        app: String,
        known: Vec<String>,
    },
    #[error("step {step} names the unknown tool {tool:?} of app {app:?}; its tools are {known:?}")]
    UnknownTool {
        step: String,
        app: String,
        tool: String,
        known: Vec<String>,
    },
    #[error("the planner called the unknown function {0:?}")]
    UnknownFunction(String),
    #[error("step {step} uses {input:?}, which is neither an earlier step nor a query of the session's history")]
    UnknownInput { step: String, input: String },
    #[error("steps {0:?} depend on each other in a cycle")]
    Cycle(Vec<String>),
}

/// Parses the planner's text into a plan and validates it against the catalog and the history.
pub fn parse(text: &str, catalog: &Catalog, history: &[QueryRecord]) -> Result<Plan, PlanError> {
    let value = json_object(text)?;
    let steps = value
        .get("steps")
        .and_then(Value::as_array)
        .ok_or_else(|| PlanError::Json("the object has no \"steps\" array".into()))?;
    let mut parsed = Vec::with_capacity(steps.len());
    for (index, step) in steps.iter().enumerate() {
        parsed.push(parse_step(index, step)?);
    }
    let answer = match value.get("answer") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(other) => {
            return Err(PlanError::Json(format!(
                "\"answer\" is {other}, expected a string"
            )))
        }
    };
    let plan = Plan {
        steps: parsed,
        answer,
    };
    validate(&plan, catalog, history)?;
    Ok(plan)
}

/// Turns the planner's tool calls into a plan of independent tool steps s1, s2, ….
pub fn from_calls(
    calls: &[bulkhead_llm::ToolCall],
    functions: &Functions,
    catalog: &Catalog,
) -> Result<Plan, PlanError> {
    let mut steps = Vec::with_capacity(calls.len());
    for (index, call) in calls.iter().enumerate() {
        let (app, tool) = functions
            .target(&call.name)
            .ok_or_else(|| PlanError::UnknownFunction(call.name.clone()))?;
        let action = Action::Tool {
            tool: tool.to_string(),
            arguments: call.arguments.clone(),
        };
        steps.push(Step {
            id: format!("s{}", index + 1),
            app: app.to_string(),
            action,
            inputs: Vec::new(),
        });
    }
    let plan = Plan {
        steps,
        answer: None,
    };
    validate(&plan, catalog, &[])?;
    Ok(plan)
}

/// Reads the first JSON object in the text, which may sit in a Markdown code fence.
fn json_object(text: &str) -> Result<Value, PlanError> {
    let start = text
        .find('{')
        .ok_or_else(|| PlanError::Json(format!("no JSON object in {:?}", excerpt(text))))?;
    let end = text
        .rfind('}')
        .filter(|end| *end > start)
        .ok_or_else(|| PlanError::Json(format!("no closing brace in {:?}", excerpt(text))))?;
    serde_json::from_str(&text[start..=end])
        .map_err(|error| PlanError::Json(format!("{error} in {:?}", excerpt(text))))
}

fn excerpt(text: &str) -> String {
    let cut: String = text.chars().take(120).collect();
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

fn parse_step(index: usize, step: &Value) -> Result<Step, PlanError> {
    let label = step
        .get("id")
        .and_then(Value::as_str)
        .map_or_else(|| format!("#{}", index + 1), str::to_string);
    let fail = |reason: &str| PlanError::Step {
        step: label.clone(),
        reason: reason.to_string(),
    };
    let id = step
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("it has no string \"id\""))?;
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(fail(
            "the id must be letters, digits, _ and -, such as \"s1\"",
        ));
    }
    let app = step
        .get("app")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("it has no string \"app\""))?;
    let tool = step
        .get("tool")
        .and_then(Value::as_str)
        .filter(|tool| !tool.is_empty());
    let instruction = step
        .get("instruction")
        .and_then(Value::as_str)
        .filter(|text| !text.trim().is_empty());

    let mut placeholders = Vec::new();
    let action = match (tool, instruction) {
        (Some(tool), None) => {
            let arguments = step
                .get("arguments")
                .cloned()
                .unwrap_or_else(|| Value::Object(Default::default()));
            if !arguments.is_object() {
                return Err(fail("\"arguments\" must be a JSON object"));
            }
            collect_placeholders(&arguments, &mut placeholders);
            Action::Tool {
                tool: tool.to_string(),
                arguments,
            }
        }
        (None, Some(text)) => {
            placeholders.extend(placeholders_in(text));
            Action::Instruction(text.to_string())
        }
        (Some(_), Some(_)) => {
            return Err(fail("it names both a tool and an instruction; give one"))
        }
        (None, None) => return Err(fail("it names neither a tool nor an instruction; give one")),
    };

    let mut inputs: Vec<String> = match step.get("inputs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| fail("\"inputs\" must be a list of step ids"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(fail("\"inputs\" must be a list of step ids")),
    };
    for placeholder in placeholders {
        if !inputs.contains(&placeholder) {
            inputs.push(placeholder);
        }
    }
    Ok(Step {
        id: id.to_string(),
        app: app.to_string(),
        action,
        inputs,
    })
}

/// Returns the references inside `{{…}}` placeholders of a text, in order.
pub fn placeholders_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let reference = after[..end].trim();
        if !reference.is_empty() && !found.iter().any(|known| known == reference) {
            found.push(reference.to_string());
        }
        rest = &after[end + 2..];
    }
    found
}

fn collect_placeholders(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::String(text) => found.extend(placeholders_in(text)),
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_placeholders(item, found)),
        Value::Object(object) => object
            .values()
            .for_each(|item| collect_placeholders(item, found)),
        _ => {}
    }
}

/// Splits `qN.ID` into the query number and the step id.
pub fn memory_reference(input: &str) -> Option<(u32, &str)> {
    let (query, step) = input.split_once('.')?;
    let number = query.strip_prefix('q')?.parse().ok()?;
    Some((number, step))
}

fn validate(plan: &Plan, catalog: &Catalog, history: &[QueryRecord]) -> Result<(), PlanError> {
    if plan.steps.is_empty() {
        return Err(PlanError::Empty);
    }
    if plan.steps.len() > MAX_STEPS {
        return Err(PlanError::TooManySteps(plan.steps.len()));
    }
    let mut ids = HashSet::new();
    for step in &plan.steps {
        if !ids.insert(step.id.as_str()) {
            return Err(PlanError::Step {
                step: step.id.clone(),
                reason: "another step has the same id".into(),
            });
        }
    }
    for step in &plan.steps {
        let Some(app) = catalog.app(&step.app) else {
            let known = catalog.names().into_iter().map(str::to_string).collect();
            return Err(PlanError::UnknownApp {
                step: step.id.clone(),
                app: step.app.clone(),
                known,
            });
        };
        if let Action::Tool { tool, .. } = &step.action {
            if !app.has_tool(tool) {
                let known = app.tools.iter().map(|known| known.name.clone()).collect();
                return Err(PlanError::UnknownTool {
                    step: step.id.clone(),
                    app: step.app.clone(),
                    tool: tool.clone(),
                    known,
                });
            }
        }
        for input in &step.inputs {
            let in_plan = ids.contains(input.as_str()) && *input != step.id;
            let in_memory = memory_reference(input).is_some_and(|(number, id)| {
                history
                    .iter()
                    .any(|query| query.number == number && query.step(id).is_some())
            });
            if !in_plan && !in_memory {
                return Err(PlanError::UnknownInput {
                    step: step.id.clone(),
                    input: input.clone(),
                });
            }
        }
    }
    check_acyclic(plan)
}

/// Rejects a plan whose steps depend on each other in a cycle, naming the steps left in it.
fn check_acyclic(plan: &Plan) -> Result<(), PlanError> {
    let mut waiting: HashMap<&str, usize> = HashMap::new();
    let mut dependents: HashMap<&str, Vec<&str>> = HashMap::new();
    let ids: HashSet<&str> = plan.steps.iter().map(|step| step.id.as_str()).collect();
    for step in &plan.steps {
        let inside: Vec<&str> = step
            .inputs
            .iter()
            .map(String::as_str)
            .filter(|input| ids.contains(input))
            .collect();
        waiting.insert(&step.id, inside.len());
        for input in inside {
            dependents.entry(input).or_default().push(&step.id);
        }
    }
    let mut ready: Vec<&str> = waiting
        .iter()
        .filter(|(_, count)| **count == 0)
        .map(|(id, _)| *id)
        .collect();
    while let Some(done) = ready.pop() {
        waiting.remove(done);
        for dependent in dependents.get(done).into_iter().flatten() {
            if let Some(count) = waiting.get_mut(dependent) {
                *count -= 1;
                if *count == 0 {
                    ready.push(dependent);
                }
            }
        }
    }
    if waiting.is_empty() {
        return Ok(());
    }
    let mut left: Vec<String> = waiting.into_keys().map(str::to_string).collect();
    left.sort();
    Err(PlanError::Cycle(left))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
