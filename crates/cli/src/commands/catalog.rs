//! `bulkhead apps diff` and `bulkhead apps approve`: reviewing and accepting a quarantined app's
//! changed tool catalog.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use bulkhead_proto::v1::{ApproveCatalogRequest, CatalogTool, DiffCatalogResponse, ToolChange};
use serde::Serialize;

use super::connect;
use crate::args::{AppApproveArgs, GlobalOptions};
use crate::output::Output;

/// A tool as `apps diff --json` prints it.
#[derive(Debug, Serialize)]
struct ToolJson {
    name: String,
    description: String,
    input_schema_json: String,
    sha256: String,
}

impl From<CatalogTool> for ToolJson {
    fn from(tool: CatalogTool) -> Self {
        ToolJson {
            name: tool.name,
            description: tool.description,
            input_schema_json: tool.input_schema_json,
            sha256: tool.sha256,
        }
    }
}

/// A changed tool as `apps diff --json` prints it.
#[derive(Debug, Serialize)]
struct ChangeJson {
    name: String,
    old_description: String,
    new_description: String,
    old_input_schema_json: String,
    new_input_schema_json: String,
    description_diff: String,
    input_schema_diff: String,
}

impl From<ToolChange> for ChangeJson {
    fn from(change: ToolChange) -> Self {
        ChangeJson {
            name: change.name,
            old_description: change.old_description,
            new_description: change.new_description,
            old_input_schema_json: change.old_input_schema_json,
            new_input_schema_json: change.new_input_schema_json,
            description_diff: change.description_diff,
            input_schema_diff: change.input_schema_diff,
        }
    }
}

/// The result of `apps diff --json`.
#[derive(Debug, Serialize)]
struct DiffJson {
    app: String,
    quarantined: bool,
    pinned_sha256: String,
    offered_sha256: String,
    trigger: String,
    quarantined_at_ms: u64,
    added: Vec<ToolJson>,
    removed: Vec<ToolJson>,
    changed: Vec<ChangeJson>,
}

impl From<DiffCatalogResponse> for DiffJson {
    fn from(diff: DiffCatalogResponse) -> Self {
        DiffJson {
            app: diff.app,
            quarantined: diff.quarantined,
            pinned_sha256: diff.pinned_sha256,
            offered_sha256: diff.offered_sha256,
            trigger: diff.trigger,
            quarantined_at_ms: diff.quarantined_at_ms,
            added: diff.added.into_iter().map(ToolJson::from).collect(),
            removed: diff.removed.into_iter().map(ToolJson::from).collect(),
            changed: diff.changed.into_iter().map(ChangeJson::from).collect(),
        }
    }
}

#[derive(Serialize)]
struct ApprovedJson {
    app: String,
    pinned_sha256: String,
    tools: u32,
}

pub async fn diff(global: &GlobalOptions, output: &Output, app: String) -> Result<ExitCode> {
    let reply = connect(global).await?.diff_catalog(app).await?;
    if output.json {
        output.print_json(&DiffJson::from(reply))?;
    } else {
        output.print_text(&render_diff(&reply))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn approve(
    global: &GlobalOptions,
    output: &Output,
    approve: AppApproveArgs,
) -> Result<ExitCode> {
    let request = ApproveCatalogRequest {
        app: approve.name.clone(),
        offered_sha256: approve.catalog.unwrap_or_default(),
    };
    let reply = connect(global).await?.approve_catalog(request).await?;
    if output.json {
        output.print_json(&ApprovedJson {
            app: approve.name,
            pinned_sha256: reply.pinned_sha256,
            tools: reply.tools,
        })?;
    } else {
        output.print_text(&format!(
            "approved the tool catalog of app {}: {} tools pinned as {}; its calls work again",
            approve.name, reply.tools, reply.pinned_sha256
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Renders a catalog diff for a person: what brought it, then each added, removed and changed
/// tool with its text indented, then the command that accepts it.
fn render_diff(diff: &DiffCatalogResponse) -> String {
    let app = &diff.app;
    if !diff.quarantined {
        return format!(
            "app {app} is not quarantined; its pinned catalog {} is in force\n",
            diff.pinned_sha256
        );
    }
    let source = match diff.trigger.as_str() {
        "list_changed" => "a tools/list_changed notification from the running app",
        _ => "a start of its spoke",
    };

    let mut text = String::new();
    let _ = writeln!(
        text,
        "app {app} is quarantined since {}: {source} brought a tool catalog that differs from the pin",
        format_time(diff.quarantined_at_ms)
    );
    let _ = writeln!(text, "pinned catalog:  {}", diff.pinned_sha256);
    let _ = writeln!(text, "offered catalog: {}", diff.offered_sha256);
    if diff.added.is_empty() && diff.removed.is_empty() && diff.changed.is_empty() {
        text.push_str("\nThe app offers the pinned catalog again. Approving lifts the quarantine.\n");
    }

    for tool in &diff.added {
        let _ = writeln!(text, "\nadded tool {}", tool.name);
        push_block(&mut text, "description", &tool.description);
        push_block(&mut text, "input schema", &tool.input_schema_json);
    }
    for tool in &diff.removed {
        let _ = writeln!(text, "\nremoved tool {}", tool.name);
    }
    for change in &diff.changed {
        let _ = writeln!(text, "\nchanged tool {}", change.name);
        if !change.description_diff.is_empty() {
            push_block(&mut text, "description", &change.description_diff);
        }
        if !change.input_schema_diff.is_empty() {
            push_block(&mut text, "input schema", &change.input_schema_diff);
        }
    }

    let _ = writeln!(
        text,
        "\nAccept this catalog with `bulkhead apps approve {app} --catalog {}`.",
        diff.offered_sha256
    );
    text
}

/// Appends "  LABEL:" and then `body` indented by four spaces.
fn push_block(text: &mut String, label: &str, body: &str) {
    let _ = writeln!(text, "  {label}:");
    for line in body.lines() {
        let _ = writeln!(text, "    {line}");
    }
}

fn format_time(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || format!("{ms} ms after the Unix epoch"),
            |time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str, description: &str) -> CatalogTool {
        CatalogTool {
            name: name.into(),
            description: description.into(),
            input_schema_json: "{\n  \"type\": \"object\"\n}".into(),
            sha256: "ff".into(),
        }
    }

    #[test]
    fn quarantined_diff_lists_every_change() {
        let diff = DiffCatalogResponse {
            app: "notes".into(),
            quarantined: true,
            pinned_sha256: "aa".into(),
            offered_sha256: "bb".into(),
            trigger: "start".into(),
            quarantined_at_ms: 0,
            added: vec![tool("send", "Sends a note.")],
            removed: vec![tool("drop", "Deletes a note.")],
            changed: vec![ToolChange {
                name: "read".into(),
                description_diff: "- Reads a note.\n+ Reads a note and mails it.\n".into(),
                ..ToolChange::default()
            }],
        };
        let expected = "\
app notes is quarantined since 1970-01-01T00:00:00Z: a start of its spoke brought a tool catalog that differs from the pin
pinned catalog:  aa
offered catalog: bb

added tool send
  description:
    Sends a note.
  input schema:
    {
      \"type\": \"object\"
    }

removed tool drop

changed tool read
  description:
    - Reads a note.
    + Reads a note and mails it.

Accept this catalog with `bulkhead apps approve notes --catalog bb`.
";
        assert_eq!(render_diff(&diff), expected);
    }

    #[test]
    fn pinned_app_has_nothing_to_review() {
        let diff = DiffCatalogResponse {
            app: "notes".into(),
            pinned_sha256: "aa".into(),
            ..DiffCatalogResponse::default()
        };
        assert_eq!(
            render_diff(&diff),
            "app notes is not quarantined; its pinned catalog aa is in force\n"
        );
    }
}
