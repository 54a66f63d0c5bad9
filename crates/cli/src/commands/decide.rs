//! `bulkhead approve ID --once|--session|--always` and `bulkhead deny ID`.

use std::process::ExitCode;

use anyhow::Result;
use bulkhead_proto::v1::{Decision, Grant};
use serde::Serialize;

use super::connect;
use super::grants::GrantJson;
use crate::args::{ApproveArgs, GlobalOptions};
use crate::output::Output;

#[derive(Debug, Serialize)]
struct DecidedJson {
    id: String,
    decision: &'static str,
    grant: Option<GrantJson>,
}

pub async fn approve(global: &GlobalOptions, output: &Output, args: ApproveArgs) -> Result<ExitCode> {
    let decision = if args.always {
        Decision::AllowAlways
    } else if args.session {
        Decision::AllowSession
    } else {
        Decision::AllowOnce
    };
    decide(global, output, args.id, decision).await
}

pub async fn deny(global: &GlobalOptions, output: &Output, id: String) -> Result<ExitCode> {
    decide(global, output, id, Decision::Deny).await
}

async fn decide(global: &GlobalOptions, output: &Output, id: String, decision: Decision) -> Result<ExitCode> {
    let reply = connect(global).await?.decide(id.clone(), decision).await?;
    if output.json {
        let json = DecidedJson { id, decision: choice_name(decision), grant: reply.grant.map(GrantJson::from) };
        output.print_json(&json)?;
    } else {
        output.print_text(&decided_text(&id, decision, reply.grant.as_ref()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Returns the word for a decision: "once", "session", "always" or "deny".
fn choice_name(decision: Decision) -> &'static str {
    match decision {
        Decision::AllowOnce => "once",
        Decision::AllowSession => "session",
        Decision::AllowAlways => "always",
        Decision::Deny | Decision::Unspecified => "deny",
    }
}

/// Parses a decision typed at the prompt: its word or its first letter, in any case.
pub(super) fn parse_choice(text: &str) -> Option<Decision> {
    match text.trim().to_lowercase().as_str() {
        "o" | "once" => Some(Decision::AllowOnce),
        "s" | "session" => Some(Decision::AllowSession),
        "a" | "always" => Some(Decision::AllowAlways),
        "d" | "deny" => Some(Decision::Deny),
        _ => None,
    }
}

/// Describes a decision the hub accepted, and the grant it made.
pub(super) fn decided_text(id: &str, decision: Decision, grant: Option<&Grant>) -> String {
    match (decision, grant) {
        (Decision::Deny | Decision::Unspecified, _) => format!("denied request {id}"),
        (Decision::AllowSession, Some(grant)) => {
            format!("approved request {id} for session {}: grant {}", grant.session, grant.id)
        }
        (Decision::AllowAlways, Some(grant)) => format!(
            "approved request {id} always: grant {}; remove it with `bulkhead grants revoke {}`",
            grant.id, grant.id
        ),
        (_, _) => format!("approved request {id} once"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_words_and_letters() {
        assert_eq!(parse_choice(" O\n"), Some(Decision::AllowOnce));
        assert_eq!(parse_choice("session"), Some(Decision::AllowSession));
        assert_eq!(parse_choice("a"), Some(Decision::AllowAlways));
        assert_eq!(parse_choice("Deny"), Some(Decision::Deny));
        assert_eq!(parse_choice("yes"), None);
        assert_eq!(parse_choice(""), None);
    }

    #[test]
    fn decided_text_names_the_grant() {
        let grant = Grant { id: "g1".into(), session: "s1".into(), ..Grant::default() };
        assert_eq!(decided_text("r1", Decision::AllowOnce, None), "approved request r1 once");
        assert_eq!(decided_text("r1", Decision::AllowSession, Some(&grant)), "approved request r1 for session s1: grant g1");
        assert!(decided_text("r1", Decision::AllowAlways, Some(&grant)).contains("bulkhead grants revoke g1"));
        assert_eq!(decided_text("r1", Decision::Deny, None), "denied request r1");
    }
}
