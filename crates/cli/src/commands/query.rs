//! `bulkhead query TEXT [--session ID] [--app APP]...`.
//!
//! Text output prints one progress line per event on stderr and the answer on stdout. `--json`
//! prints every event as one JSON object a line (JSON Lines) on stdout.

use std::process::ExitCode;

use anyhow::Result;
use bulkhead_proto::v1::query_event::Event;
use bulkhead_proto::v1::{ApprovalNeeded, Decision, QueryRequest};
use serde_json::{json, Value};

use super::approvals::stdin_lines;
use super::connect;
use super::decide::{decided_text, parse_choice};
use crate::connect::Hub;
use crate::args::{GlobalOptions, QueryArgs};
use crate::output::Output;

pub async fn run(global: &GlobalOptions, output: &Output, args: QueryArgs) -> Result<ExitCode> {
    let mut hub = connect(global).await?;
    let mut approver = if args.approve { Some(Approver::attach(&mut hub).await?) } else { None };
    let request = QueryRequest {
        session_id: args.session,
        text: args.text,
        apps: args.apps,
    };
    let mut stream = hub.query(request).await?;
    let mut answered = false;
    loop {
        let event = match stream.message().await {
            Ok(Some(message)) => message.event,
            Ok(None) => break,
            Err(status) => return Err(hub.query_error(status)),
        };
        let Some(event) = event else { continue };
        answered |= matches!(event, Event::Answer(_));
        if output.json {
            output.print_text(&event_json(&event).to_string())?;
        } else {
            print_progress(output, &event)?;
        }
        if let (Some(approver), Event::ApprovalNeeded(flow)) = (approver.as_mut(), &event) {
            approver.decide(&mut hub, output, flow).await?;
        }
    }
    Ok(if answered {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_progress(output: &Output, event: &Event) -> Result<()> {
    match event {
        Event::Plan(plan) => {
            let retry = if plan.attempt > 1 {
                " after one rejected plan"
            } else {
                ""
            };
            output.print_stderr(&format!(
                "plan: {} steps{retry} (query q{})",
                plan.steps.len(),
                plan.query_number
            ));
            for step in &plan.steps {
                let action = if step.tool.is_empty() {
                    format!("instruction {:?}", step.instruction)
                } else {
                    format!("{} {}", step.tool, step.arguments_json)
                };
                let inputs = if step.inputs.is_empty() {
                    String::new()
                } else {
                    format!(" <- {}", step.inputs.join(", "))
                };
                output.print_stderr(&format!("  {} {}: {action}{inputs}", step.id, step.app));
            }
        }
        Event::StepStarted(step) => {
            output.print_stderr(&format!("step {} ({}) started", step.id, step.app))
        }
        Event::StepFinished(step) if step.ok => {
            output.print_stderr(&format!(
                "step {} ({}) finished in {} ms",
                step.id, step.app, step.elapsed_ms
            ));
        }
        Event::StepFinished(step) => output.print_stderr(&format!(
            "step {} ({}) failed: {}",
            step.id, step.app, step.error
        )),
        Event::ApprovalNeeded(flow) => output.print_stderr(&format!(
            "approval needed: request {} for data from {} into {}/{} in step {} ({}) with {}; \
             decide with `bulkhead approve {} --once` or `bulkhead deny {}`",
            flow.request_id,
            flow.source_app,
            flow.target_app,
            flow.tool,
            flow.step_id,
            fields_text(&flow.fields),
            flow.arguments_json,
            flow.request_id,
            flow.request_id
        )),
        Event::FlowDecided(flow) => {
            let verdict = match (flow.allowed, flow.withheld) {
                (true, _) => format!("allowed by {}", flow.by),
                (false, true) => format!("withheld, the step goes on without it: {}", flow.reason),
                (false, false) => format!("denied: {}", flow.reason),
            };
            output.print_stderr(&format!(
                "flow {} -> {}/{} in step {} ({}): {verdict}",
                flow.source_app,
                flow.target_app,
                flow.tool,
                flow.step_id,
                fields_text(&flow.fields)
            ));
        }
        Event::Answer(answer) => output.print_text(&answer.text)?,
        // The stream ends with the same error as a gRPC status, which `run` reports.
        Event::Error(_) => {}
    }
    Ok(())
}

/// Renders an event as a JSON object whose "event" key names its kind.
fn event_json(event: &Event) -> Value {
    match event {
        Event::Plan(plan) => {
            let steps: Vec<Value> = plan
                .steps
                .iter()
                .map(|step| {
                    let arguments = serde_json::from_str::<Value>(&step.arguments_json).unwrap_or(Value::Null);
                    json!({"id": step.id, "app": step.app, "tool": step.tool, "arguments": arguments,
                           "instruction": step.instruction, "inputs": step.inputs})
                })
                .collect();
            json!({"event": "plan", "attempt": plan.attempt, "query_number": plan.query_number, "steps": steps})
        }
        Event::StepStarted(step) => {
            json!({"event": "step_started", "id": step.id, "app": step.app})
        }
        Event::StepFinished(step) => {
            json!({"event": "step_finished", "id": step.id, "app": step.app, "ok": step.ok,
                                            "output": step.output, "error": step.error, "elapsed_ms": step.elapsed_ms})
        }
        Event::ApprovalNeeded(flow) => {
            json!({"event": "approval_needed", "step_id": flow.step_id, "request_id": flow.request_id,
                   "source_app": flow.source_app, "target_app": flow.target_app, "tool": flow.tool,
                   "arguments_json": flow.arguments_json, "fields": flow.fields, "reason": flow.reason,
                   "expires_at_ms": flow.expires_at_ms})
        }
        Event::FlowDecided(flow) => {
            json!({"event": "flow_decided", "step_id": flow.step_id, "source_app": flow.source_app,
                   "target_app": flow.target_app, "tool": flow.tool, "arguments_json": flow.arguments_json,
                   "fields": flow.fields, "allowed": flow.allowed, "by": flow.by, "reason": flow.reason,
                   "withheld": flow.withheld})
        }
        Event::Answer(answer) => {
            json!({"event": "answer", "text": answer.text, "llm_calls": answer.llm_calls})
        }
        Event::Error(error) => {
            json!({"event": "error", "code": error.code, "message": error.message})
        }
    }
}

/// The query's own approver. While it is attached, the hub keeps this principal's flows waiting
/// for a decision instead of denying them, and it decides each request the query announces from a line
/// of stdin. Requests of the principal's other calls wait meanwhile for another approver, or time
/// out.
struct Approver {
    lines: tokio::sync::mpsc::Receiver<std::io::Result<String>>,
    watch: tokio::task::JoinHandle<()>,
}

impl Approver {
    async fn attach(hub: &mut Hub) -> Result<Approver> {
        let mut stream = hub.watch_approvals().await?;
        // The query's own events announce its requests, so the watch stream is only drained: an
        // approver that stops reading is dropped by the hub.
        let watch = tokio::spawn(async move { while let Ok(Some(_)) = stream.message().await {} });
        Ok(Approver { lines: stdin_lines(), watch })
    }

    /// Asks for a decision on stderr and sends it, asking again after an invalid line or a
    /// decision the hub rejects. The end of stdin denies the request.
    async fn decide(&mut self, hub: &mut Hub, output: &Output, flow: &ApprovalNeeded) -> Result<()> {
        loop {
            output.print_stderr(&format!("decide request {}: [o]nce, [s]ession, [a]lways, [d]eny", flow.request_id));
            let decision = match self.lines.recv().await.transpose()? {
                Some(line) => match parse_choice(&line) {
                    Some(decision) => decision,
                    None => {
                        output.print_stderr(&format!("invalid choice {:?}", line.trim()));
                        continue;
                    }
                },
                None => {
                    output.print_stderr("stdin closed, so the request is denied");
                    Decision::Deny
                }
            };
            match hub.decide(flow.request_id.clone(), decision).await {
                Ok(reply) => {
                    output.print_stderr(&decided_text(&flow.request_id, decision, reply.grant.as_ref()));
                    return Ok(());
                }
                Err(error) if decision == Decision::Deny => return Err(error),
                Err(error) => output.print_stderr(&format!("error: {error:#}")),
            }
        }
    }
}

impl Drop for Approver {
    fn drop(&mut self) {
        self.watch.abort();
    }
}

/// Names the fields that carry the data, or notes that the flow concerns the whole session.
fn fields_text(fields: &[String]) -> String {
    if fields.is_empty() {
        "no single field".to_string()
    } else {
        format!("fields {}", fields.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use bulkhead_proto::v1::{Answer, StepStarted};

    use super::*;

    #[test]
    fn events_render_with_their_kind() {
        let answer = event_json(&Event::Answer(Answer {
            text: "57.0".into(),
            llm_calls: 3,
        }));
        assert_eq!(
            answer,
            json!({"event": "answer", "text": "57.0", "llm_calls": 3})
        );
        let started = event_json(&Event::StepStarted(StepStarted {
            id: "s1".into(),
            app: "notes".into(),
        }));
        assert_eq!(started["event"], "step_started");
        assert_eq!(started["app"], "notes");
    }
}
