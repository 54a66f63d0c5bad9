//! Running a validated plan: steps start as soon as their inputs are ready, so independent steps
//! run in parallel, and each input from another app passes the flow check before its step runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bulkhead_proto::v1::query_event::Event;
use bulkhead_proto::v1::{PlanEvent, PlanStep, StepFinished, StepStarted};
use serde_json::Value;
use tokio::task::JoinSet;

use super::catalog::Catalog;
use super::memory::{QueryRecord, StepRecord};
use super::plan::{memory_reference, Action, Plan, Step};
use super::{context, QueryRun};
use crate::error::HubError;
use crate::flow::guard;
use crate::hub::Carried;
use crate::service::result_text;

/// The label of an instruction step in flow decisions, audit records and memory.
pub const INSTRUCTION_LABEL: &str = "(instruction)";

/// The outcome of one step.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub app: String,
    pub ok: bool,
    /// The output text, or the reason for the failure.
    pub output: String,
}

/// An output a step uses, with the app it came from.
#[derive(Debug, Clone)]
struct Input {
    reference: String,
    app: String,
    text: String,
}

pub fn plan_event(plan: &Plan, attempt: u32, query_number: u32) -> PlanEvent {
    let steps = plan
        .steps
        .iter()
        .map(|step| {
            let (tool, arguments_json, instruction) = match &step.action {
                Action::Tool { tool, arguments } => {
                    (tool.clone(), arguments.to_string(), String::new())
                }
                Action::Instruction(text) => (String::new(), String::new(), text.clone()),
            };
            PlanStep {
                id: step.id.clone(),
                app: step.app.clone(),
                tool,
                arguments_json,
                instruction,
                inputs: step.inputs.clone(),
            }
        })
        .collect();
    PlanEvent {
        steps,
        attempt,
        query_number,
    }
}

/// Runs every step of the plan and returns each step's result by id. A step whose input failed
/// fails without running.
pub async fn execute(
    run: &Arc<QueryRun>,
    catalog: &Arc<Catalog>,
    plan: &Plan,
    history: &[QueryRecord],
) -> HashMap<String, StepResult> {
    let mut results: HashMap<String, StepResult> = HashMap::new();
    let mut pending: Vec<&Step> = plan.steps.iter().collect();
    let mut running = JoinSet::new();
    loop {
        let mut index = 0;
        while index < pending.len() {
            let step = pending[index];
            let inputs = match resolve_inputs(step, &results, history) {
                Resolved::Waiting => {
                    index += 1;
                    continue;
                }
                Resolved::Failed(reason) => {
                    pending.remove(index);
                    let result = StepResult {
                        app: step.app.clone(),
                        ok: false,
                        output: reason,
                    };
                    finish(run, &step.id, &result, Instant::now()).await;
                    results.insert(step.id.clone(), result);
                    continue;
                }
                Resolved::Ready(inputs) => inputs,
            };
            pending.remove(index);
            run.emit(Event::StepStarted(StepStarted {
                id: step.id.clone(),
                app: step.app.clone(),
            }))
            .await;
            let (run, catalog, step) = (run.clone(), catalog.clone(), step.clone());
            running.spawn(async move {
                let started = Instant::now();
                let result = run_step(&run, &catalog, &step, inputs).await;
                finish(&run, &step.id, &result, started).await;
                (step.id, result)
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        match joined {
            Ok((id, result)) => {
                results.insert(id, result);
            }
            Err(error) => tracing::error!(%error, "a query step task failed"),
        }
    }
    // A step task that panicked leaves its dependents waiting, so they fail here.
    for step in pending {
        let result = StepResult {
            app: step.app.clone(),
            ok: false,
            output: "an input step did not finish".into(),
        };
        results.insert(step.id.clone(), result);
    }
    results
}

enum Resolved {
    Waiting,
    Failed(String),
    Ready(Vec<Input>),
}

fn resolve_inputs(
    step: &Step,
    results: &HashMap<String, StepResult>,
    history: &[QueryRecord],
) -> Resolved {
    let mut inputs = Vec::with_capacity(step.inputs.len());
    for reference in &step.inputs {
        let (app, ok, text) = if let Some(result) = results.get(reference) {
            (result.app.clone(), result.ok, result.output.clone())
        } else if let Some(record) = remembered(reference, history) {
            (record.app.clone(), record.ok, record.output.clone())
        } else {
            return Resolved::Waiting;
        };
        if !ok {
            return Resolved::Failed(format!("skipped because its input {reference} failed"));
        }
        inputs.push(Input {
            reference: reference.clone(),
            app,
            text,
        });
    }
    Resolved::Ready(inputs)
}

fn remembered<'a>(reference: &str, history: &'a [QueryRecord]) -> Option<&'a StepRecord> {
    let (number, id) = memory_reference(reference)?;
    history
        .iter()
        .find(|query| query.number == number)?
        .step(id)
}

async fn finish(run: &QueryRun, id: &str, result: &StepResult, started: Instant) {
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (output, error) = if result.ok {
        (result.output.clone(), String::new())
    } else {
        (String::new(), result.output.clone())
    };
    let event = StepFinished {
        id: id.to_string(),
        app: result.app.clone(),
        ok: result.ok,
        output,
        error,
        elapsed_ms,
    };
    run.emit(Event::StepFinished(event)).await;
}

async fn run_step(
    run: &Arc<QueryRun>,
    catalog: &Catalog,
    step: &Step,
    inputs: Vec<Input>,
) -> StepResult {
    let outcome = match &step.action {
        Action::Tool { tool, arguments } => tool_step(run, step, tool, arguments, &inputs).await,
        Action::Instruction(text) => instruction_step(run, catalog, step, text, &inputs).await,
    };
    match outcome {
        Ok((ok, output)) => StepResult {
            app: step.app.clone(),
            ok,
            output,
        },
        Err(error) => StepResult {
            app: step.app.clone(),
            ok: false,
            output: error.to_string(),
        },
    }
}

/// Returns, for each app other than `app` whose output a tool step's arguments use, the argument
/// fields that its outputs fill.
fn carried_arguments(app: &str, template: &Value, inputs: &[Input]) -> Vec<Carried> {
    let leaves = guard::string_leaves(template);
    let mut carried: Vec<Carried> = Vec::new();
    for input in inputs.iter().filter(|input| input.app != app) {
        for (pointer, text) in &leaves {
            if mentions(text, &input.reference) {
                add_carried(&mut carried, &input.app, pointer.clone());
            }
        }
    }
    carried
}

/// Adds a field that carries data of `app`, once.
fn add_carried(carried: &mut Vec<Carried>, app: &str, field: String) {
    match carried.iter_mut().find(|entry| entry.app == app) {
        Some(entry) if entry.fields.contains(&field) => {}
        Some(entry) => entry.fields.push(field),
        None => carried.push(Carried { app: app.to_string(), fields: vec![field] }),
    }
}

/// Reports whether `text` contains the placeholder of `reference`, in either spelling that
/// [`fill_text`] replaces.
fn mentions(text: &str, reference: &str) -> bool {
    text.contains(&format!("{{{{{reference}}}}}")) || text.contains(&format!("{{{{ {reference} }}}}"))
}

async fn tool_step(
    run: &QueryRun,
    step: &Step,
    tool: &str,
    arguments: &Value,
    inputs: &[Input],
) -> Result<(bool, String), HubError> {
    let carried = carried_arguments(&step.app, arguments, inputs);
    let arguments_json = fill_value(arguments, inputs).to_string();
    let outcome = run.call(&step.id, &step.app, tool, arguments_json, &carried).await?;
    Ok((!outcome.is_error, result_text(&outcome.result_json)))
}

/// Runs an instruction step in its app's context. The inputs travel to the hub's flow check as
/// fields of their own, "/inputs/REFERENCE", so that a denied one is withheld alone.
async fn instruction_step(
    run: &Arc<QueryRun>,
    catalog: &Catalog,
    step: &Step,
    text: &str,
    inputs: &[Input],
) -> Result<(bool, String), HubError> {
    let entry = match catalog.app(&step.app) {
        Some(app) => app.entry.clone(),
        None => run.hub.app(&step.app).await?,
    };
    let mut carried: Vec<Carried> = Vec::new();
    for input in inputs.iter().filter(|input| input.app != step.app) {
        let field = format!("/inputs/{}", guard::pointer_token(&input.reference));
        add_carried(&mut carried, &input.app, field);
    }
    let mut text = text.to_string();
    let mut inputs: Vec<Input> = inputs.to_vec();
    if !carried.is_empty() {
        let input_texts: serde_json::Map<String, Value> =
            inputs.iter().map(|input| (input.reference.clone(), Value::from(input.text.as_str()))).collect();
        let payload = serde_json::json!({ "instruction": text, "inputs": input_texts }).to_string();
        let passed = run.transfer(&step.id, &step.app, INSTRUCTION_LABEL, &payload, &carried, true).await?;
        let passed: Value = serde_json::from_str(&passed).map_err(|error| HubError::InvalidQuery(error.to_string()))?;
        text = passed["instruction"].as_str().unwrap_or_default().to_string();
        for input in &mut inputs {
            input.text = passed["inputs"][&input.reference].as_str().unwrap_or_default().to_string();
        }
    }
    let placed = super::plan::placeholders_in(&text);
    let extra: Vec<(String, String, String)> = inputs
        .iter()
        .filter(|input| !placed.contains(&input.reference))
        .map(|input| (input.reference.clone(), input.app.clone(), input.text.clone()))
        .collect();
    let instruction = super::prompt::context_user(&fill_text(&text, &inputs), &extra);
    let output = context::run_context(run, &step.id, &entry, &instruction, 1).await?;
    Ok((true, output))
}

/// Replaces each `{{REFERENCE}}` of the inputs in a text with the input's output.
fn fill_text(text: &str, inputs: &[Input]) -> String {
    let mut filled = text.to_string();
    for input in inputs {
        filled = filled.replace(&format!("{{{{{}}}}}", input.reference), &input.text);
        filled = filled.replace(&format!("{{{{ {} }}}}", input.reference), &input.text);
    }
    filled
}

/// Fills placeholders in every string of a JSON value.
fn fill_value(value: &Value, inputs: &[Input]) -> Value {
    match value {
        Value::String(text) => Value::from(fill_text(text, inputs)),
        Value::Array(items) => Value::from(
            items
                .iter()
                .map(|item| fill_value(item, inputs))
                .collect::<Vec<_>>(),
        ),
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(key, item)| (key.clone(), fill_value(item, inputs)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Builds the answer: the plan's template with every `{{ID}}` filled in, or else the output of
/// each step that no other step uses, one line per step, prefixed with its app when there are
/// several.
pub fn compose_answer(plan: &Plan, results: &HashMap<String, StepResult>) -> String {
    let shown = |id: &str| match results.get(id) {
        Some(result) if result.ok => result.output.trim().to_string(),
        Some(result) => format!("(step {id} failed: {})", result.output),
        None => format!("(step {id} did not run)"),
    };
    if let Some(template) = &plan.answer {
        let mut answer = template.clone();
        for step in &plan.steps {
            answer = answer.replace(&format!("{{{{{}}}}}", step.id), &shown(&step.id));
            answer = answer.replace(&format!("{{{{ {} }}}}", step.id), &shown(&step.id));
        }
        return answer;
    }
    let used: Vec<&String> = plan
        .steps
        .iter()
        .flat_map(|step| step.inputs.iter())
        .collect();
    let sinks: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|step| !used.contains(&&step.id))
        .collect();
    if let [only] = sinks.as_slice() {
        return shown(&only.id);
    }
    sinks
        .iter()
        .map(|step| format!("{}: {}", step.app, shown(&step.id)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Turns the finished steps into history records, in plan order.
pub fn step_records(plan: &Plan, results: &HashMap<String, StepResult>) -> Vec<StepRecord> {
    plan.steps
        .iter()
        .map(|step| {
            let result = results.get(&step.id);
            let action = match &step.action {
                Action::Tool { tool, .. } => tool.clone(),
                Action::Instruction(_) => INSTRUCTION_LABEL.to_string(),
            };
            StepRecord {
                id: step.id.clone(),
                app: step.app.clone(),
                action,
                ok: result.is_some_and(|result| result.ok),
                output: result
                    .map(|result| result.output.clone())
                    .unwrap_or_default(),
            }
        })
        .collect()
}
