//! `bulkhead grants list` and `bulkhead grants revoke ID`.

use std::process::ExitCode;

use anyhow::{anyhow, Result};
use bulkhead_proto::v1::Grant;
use serde::Serialize;

use super::connect;
use crate::args::GlobalOptions;
use crate::output::Output;
use crate::table::Table;

/// A grant as `--json` prints it.
#[derive(Debug, Serialize)]
pub(super) struct GrantJson {
    id: String,
    scope: String,
    principal: String,
    session: String,
    source_app: String,
    target_app: String,
    tool: String,
    approver: String,
    request: String,
    created_at_ms: u64,
}

impl From<Grant> for GrantJson {
    fn from(grant: Grant) -> Self {
        GrantJson {
            id: grant.id,
            scope: grant.scope,
            principal: grant.principal,
            session: grant.session,
            source_app: grant.source_app,
            target_app: grant.target_app,
            tool: grant.tool,
            approver: grant.approver,
            request: grant.request,
            created_at_ms: grant.created_at_ms,
        }
    }
}

pub async fn list(global: &GlobalOptions, output: &Output) -> Result<ExitCode> {
    let grants = connect(global).await?.list_grants().await?;
    if output.json {
        let json: Vec<GrantJson> = grants.into_iter().map(GrantJson::from).collect();
        output.print_json(&json)?;
    } else if grants.is_empty() {
        output.print_text("no grants; `bulkhead approve ID --session` or `--always` makes one")?;
    } else {
        output.print_table(&grant_table(&grants), false)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn revoke(global: &GlobalOptions, output: &Output, id: String) -> Result<ExitCode> {
    let grant = connect(global).await?.revoke_grant(id.clone()).await?;
    let grant = grant.ok_or_else(|| {
        anyhow!("the hub revoked grant {id} but did not return it; upgrade bulkhead to the version of bulkheadd")
    })?;
    if output.json {
        output.print_json(&GrantJson::from(grant))?;
    } else {
        output.print_text(&format!(
            "revoked grant {id}: {} {} -> {}/{} for {}",
            grant.scope, grant.source_app, grant.target_app, grant.tool, grant.principal
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn grant_table(grants: &[Grant]) -> Table {
    let mut table = Table::new(&["ID", "SCOPE", "PRINCIPAL", "SESSION", "FLOW", "APPROVER", "CREATED"]);
    for grant in grants {
        table.push(vec![
            grant.id.clone(),
            grant.scope.clone(),
            grant.principal.clone(),
            if grant.session.is_empty() { "-".to_string() } else { grant.session.clone() },
            format!("{} -> {}/{}", grant.source_app, grant.target_app, grant.tool),
            grant.approver.clone(),
            created_text(grant.created_at_ms),
        ]);
    }
    table
}

/// Formats milliseconds since the Unix epoch as UTC time to the second.
fn created_text(created_at_ms: u64) -> String {
    i64::try_from(created_at_ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|time| time.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_table_shows_the_flow() {
        let grant = Grant {
            id: "g1".into(),
            scope: "always".into(),
            principal: "uid:0".into(),
            session: String::new(),
            source_app: "repo_private".into(),
            target_app: "repo_public".into(),
            tool: "list_issues".into(),
            approver: "uid:0".into(),
            request: "r1".into(),
            created_at_ms: 1_700_000_000_000,
        };
        let expected = "\
ID  SCOPE   PRINCIPAL  SESSION  FLOW                                     APPROVER  CREATED
g1  always  uid:0      -        repo_private -> repo_public/list_issues  uid:0     2023-11-14 22:13:20Z
";
        assert_eq!(grant_table(&[grant]).render(None), expected);
    }
}
