//! `bulkhead approvals`: watch the flows that wait for a decision.
//!
//! Interactively, each request is shown in full and the user decides it on stdin. With `--json`,
//! every event is printed as one JSON object a line (JSON Lines) and nothing is asked, so that a
//! script can read the requests and decide them with `bulkhead approve` or `bulkhead deny`.

use std::collections::VecDeque;
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use bulkhead_proto::v1::approval_event::Event;
use bulkhead_proto::v1::{ApprovalEvent, ApprovalRequest};
use serde::Serialize;

use super::connect;
use super::decide::{decided_text, parse_choice};
use crate::args::GlobalOptions;
use crate::connect::Hub;
use crate::output::Output;

/// One line of `--json` output.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum EventJson<'a> {
    Request {
        id: &'a str,
        principal: &'a str,
        session: &'a str,
        source_app: &'a str,
        target_app: &'a str,
        tool: &'a str,
        rule: &'a str,
        reason: &'a str,
        arguments: &'a str,
        fields: &'a [String],
        destructive: bool,
        requested_at_ms: u64,
        expires_at_ms: u64,
    },
    Settled {
        id: &'a str,
        outcome: &'a str,
    },
}

impl<'a> EventJson<'a> {
    fn from_event(event: &'a Event) -> EventJson<'a> {
        match event {
            Event::Request(request) => EventJson::Request {
                id: &request.id,
                principal: &request.principal,
                session: &request.session,
                source_app: &request.source_app,
                target_app: &request.target_app,
                tool: &request.tool,
                rule: &request.rule,
                reason: &request.reason,
                arguments: &request.arguments,
                fields: &request.fields,
                destructive: request.destructive,
                requested_at_ms: request.requested_at_ms,
                expires_at_ms: request.expires_at_ms,
            },
            Event::Settled(settled) => EventJson::Settled { id: &settled.id, outcome: &settled.outcome },
        }
    }
}

const STREAM_CLOSED: &str =
    "the hub closed the approvals stream, so it may have stopped; check `bulkhead status` and run `bulkhead approvals` again";

pub async fn watch(global: &GlobalOptions, output: &Output) -> Result<ExitCode> {
    let mut hub = connect(global).await?;
    let mut stream = hub.watch_approvals().await?;
    output.print_stderr("watching for flows that need a decision; press Ctrl-C to stop");
    if output.json {
        loop {
            let event = next_event(&hub, &mut stream).await?;
            output.print_text(&serde_json::to_string(&EventJson::from_event(&event))?)?;
        }
    }
    interactive(output, &mut hub, &mut stream).await
}

async fn next_event(hub: &Hub, stream: &mut tonic::Streaming<ApprovalEvent>) -> Result<Event> {
    match stream.message().await {
        Ok(Some(ApprovalEvent { event: Some(event) })) => Ok(event),
        Ok(Some(ApprovalEvent { event: None })) => Err(anyhow!(
            "the hub sent an approval event without content; upgrade bulkhead to the version of bulkheadd"
        )),
        Ok(None) => Err(anyhow!(STREAM_CLOSED)),
        Err(status) => Err(hub.stream_error(status, "WatchApprovals")),
    }
}

/// Shows the oldest pending request, reads the user's decision from stdin, and repeats until
/// stdin ends. Requests settled elsewhere leave the queue with a note.
async fn interactive(output: &Output, hub: &mut Hub, stream: &mut tonic::Streaming<ApprovalEvent>) -> Result<ExitCode> {
    let mut queue: VecDeque<ApprovalRequest> = VecDeque::new();
    // Whether the front of the queue has been printed with its choices.
    let mut front_shown = false;
    let mut stdin = stdin_lines();
    loop {
        if let (Some(request), false) = (queue.front(), front_shown) {
            output.print_text(&request_text(request, now_ms()))?;
            front_shown = true;
        }
        tokio::select! {
            event = next_event(hub, stream) => match event? {
                Event::Request(request) => queue.push_back(request),
                Event::Settled(settled) => {
                    let Some(position) = queue.iter().position(|request| request.id == settled.id) else { continue };
                    queue.remove(position);
                    output.print_text(&format!("request {} was settled elsewhere: {}", settled.id, settled.outcome))?;
                    if position == 0 {
                        front_shown = false;
                    }
                }
            },
            line = stdin.recv() => {
                let Some(line) = line.transpose()? else {
                    output.print_stderr("stdin closed, so no more decisions can be read; use --json to watch without deciding");
                    return Ok(ExitCode::SUCCESS);
                };
                let Some(request) = queue.front() else {
                    if !line.trim().is_empty() {
                        output.print_stderr("no request is pending; the input was ignored");
                    }
                    continue;
                };
                let Some(decision) = parse_choice(&line) else {
                    output.print_stderr(&format!("invalid choice {:?}; {}", line.trim(), choices(request)));
                    continue;
                };
                let id = request.id.clone();
                match hub.decide(id.clone(), decision).await {
                    Ok(reply) => {
                        output.print_text(&decided_text(&id, decision, reply.grant.as_ref()))?;
                        queue.pop_front();
                        front_shown = false;
                    }
                    Err(error) => {
                        output.print_stderr(&format!("error: {error:#}"));
                        if let Some(request) = queue.front() {
                            output.print_text(&choices(request))?;
                        }
                    }
                }
            }
        }
    }
}

/// Reads stdin line by line on a thread of its own, because a blocking read cannot be part of
/// the `select!` above. The thread ends at the end of stdin, or at the first line after the
/// receiver is gone.
pub(super) fn stdin_lines() -> tokio::sync::mpsc::Receiver<std::io::Result<String>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let failed = line.is_err();
            if sender.blocking_send(line).is_err() || failed {
                return;
            }
        }
    });
    receiver
}

/// Describes a request in full, with its arguments untruncated, and the choices.
fn request_text(request: &ApprovalRequest, now_ms: u64) -> String {
    let session = if request.session.is_empty() { "no session".to_string() } else { format!("session {}", request.session) };
    let destructive = if request.destructive { " (destructive)" } else { "" };
    let seconds_left = request.expires_at_ms.saturating_sub(now_ms).div_ceil(1000);
    [
        format!("request {} from {}, {session}", request.id, request.principal),
        format!("  flow:      {} -> {}/{}{destructive}", request.source_app, request.target_app, request.tool),
        format!("  rule:      {}: {}", request.rule, request.reason),
        format!("  arguments: {}", request.arguments),
        format!("  fields:    {}", if request.fields.is_empty() { "(the whole session)".to_string() } else { request.fields.join(", ") }),
        format!("  expires:   in {seconds_left}s, then the call is denied"),
        choices(request),
    ]
    .join("\n")
}

/// Lists the decisions that apply to `request`.
fn choices(request: &ApprovalRequest) -> String {
    let mut offered = vec!["[o]nce"];
    if !request.session.is_empty() {
        offered.push("[s]ession");
    }
    if !request.destructive {
        offered.push("[a]lways");
    }
    offered.push("[d]eny");
    format!("decide: {}", offered.join(", "))
}

fn now_ms() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use bulkhead_proto::v1::Decision;

    use super::*;

    fn request(session: &str, destructive: bool) -> ApprovalRequest {
        ApprovalRequest {
            id: "ab12cd34".into(),
            principal: "uid:0".into(),
            session: session.into(),
            source_app: "repo_private".into(),
            target_app: "repo_public".into(),
            tool: "create_pr".into(),
            rule: "confidential".into(),
            reason: "the session read confidential data from app \"repo_private\"".into(),
            arguments: "{\"body\": \"deploy key: K\", \"title\": \"Sync\"}".into(),
            fields: vec!["/body".into()],
            destructive,
            requested_at_ms: 1_000,
            expires_at_ms: 61_000,
        }
    }

    #[test]
    fn request_text_shows_every_field() {
        let text = request_text(&request("s1", true), 2_000);
        let expected = "\
request ab12cd34 from uid:0, session s1
  flow:      repo_private -> repo_public/create_pr (destructive)
  rule:      confidential: the session read confidential data from app \"repo_private\"
  arguments: {\"body\": \"deploy key: K\", \"title\": \"Sync\"}
  fields:    /body
  expires:   in 59s, then the call is denied
decide: [o]nce, [s]ession, [d]eny";
        assert_eq!(text, expected);
    }

    #[test]
    fn choices_depend_on_session_and_tool() {
        assert_eq!(choices(&request("", false)), "decide: [o]nce, [a]lways, [d]eny");
        assert_eq!(choices(&request("s", false)), "decide: [o]nce, [s]ession, [a]lways, [d]eny");
    }

    #[test]
    fn json_lines_are_tagged_by_event() {
        let event = Event::Request(request("s1", true));
        let json = serde_json::to_value(EventJson::from_event(&event)).expect("serializes");
        assert_eq!(json["event"], "request");
        assert_eq!(json["id"], "ab12cd34");
        assert_eq!(json["destructive"], true);
        assert_eq!(json["expires_at_ms"], 61_000);
        assert_eq!(json["fields"], serde_json::json!(["/body"]));
        let settled = Event::Settled(bulkhead_proto::v1::ApprovalSettled { id: "ab12cd34".into(), outcome: "timed out".into() });
        let json = serde_json::to_value(EventJson::from_event(&settled)).expect("serializes");
        assert_eq!(json, serde_json::json!({"event": "settled", "id": "ab12cd34", "outcome": "timed out"}));
    }

    #[test]
    fn every_decision_has_a_choice() {
        for decision in [Decision::AllowOnce, Decision::AllowSession, Decision::AllowAlways, Decision::Deny] {
            let word = decision.as_str_name().rsplit('_').next().expect("a word").to_lowercase();
            assert_eq!(parse_choice(&word), Some(decision), "{word}");
        }
    }
}
