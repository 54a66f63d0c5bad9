//! `bulkhead tools [APP]`.

use std::process::ExitCode;

use anyhow::Result;
use bulkhead_proto::v1::Tool;
use serde::Serialize;
use serde_json::Value;

use super::connect;
use crate::args::GlobalOptions;
use crate::output::Output;
use crate::table::Table;

/// A tool as `--json` prints it, with its input schema parsed.
#[derive(Debug, Serialize)]
struct ToolJson {
    app: String,
    name: String,
    description: String,
    input_schema: Value,
    destructive: bool,
}

pub async fn run(global: &GlobalOptions, output: &Output, app: Option<String>) -> Result<ExitCode> {
    let only_app = app.unwrap_or_default();
    let reply = connect(global).await?.list_tools(only_app.clone()).await?;

    if output.json {
        let tools: Vec<ToolJson> = reply
            .tools
            .into_iter()
            .map(|tool| tool_json(output, tool))
            .collect();
        output.print_json(&tools)?;
        return Ok(ExitCode::SUCCESS);
    }

    let table = tool_table(&reply.tools);
    if !table.is_empty() {
        output.print_table(&table, true)?;
    } else if only_app.is_empty() {
        output.print_text("no tools; register an app with `bulkhead apps add FILE`")?;
    } else {
        output.print_text(&format!("app {only_app} exposes no tools"))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn tool_table(tools: &[Tool]) -> Table {
    let mut table = Table::new(&["APP", "TOOL", "DESTRUCTIVE", "DESCRIPTION"]);
    for tool in tools {
        let destructive = if tool.destructive { "yes" } else { "no" };
        table.push(vec![
            tool.app.clone(),
            tool.name.clone(),
            destructive.to_owned(),
            tool.description.clone(),
        ]);
    }
    table
}

/// Converts a tool for JSON output. A schema that is empty or not valid JSON becomes null, with a
/// warning on stderr for the invalid case, so one bad tool does not hide the others.
fn tool_json(output: &Output, tool: Tool) -> ToolJson {
    let input_schema = match parse_schema(&tool.input_schema_json) {
        Ok(schema) => schema,
        Err(err) => {
            output.warn(&format!(
                "tool {}/{}: the input schema is not valid JSON ({err}); printing null",
                tool.app, tool.name
            ));
            Value::Null
        }
    };
    ToolJson {
        app: tool.app,
        name: tool.name,
        description: tool.description,
        input_schema,
        destructive: tool.destructive,
    }
}

fn parse_schema(text: &str) -> serde_json::Result<Value> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str, destructive: bool, description: &str) -> Tool {
        Tool {
            app: "notes".into(),
            name: name.into(),
            description: description.into(),
            input_schema_json: r#"{"type":"object"}"#.into(),
            destructive,
        }
    }

    #[test]
    fn tool_table_shows_destructive() {
        let tools = [
            tool("read", false, "Read a note"),
            tool("delete", true, "Delete a note"),
        ];
        let expected = "\
APP    TOOL    DESTRUCTIVE  DESCRIPTION
notes  read    no           Read a note
notes  delete  yes          Delete a note
";
        assert_eq!(tool_table(&tools).render(None), expected);
    }

    #[test]
    fn tool_table_cuts_description() {
        let long = "Append a line of text to the end of a note, creating the note if needed";
        let rendered = tool_table(&[tool("append", false, long)]).render(Some(50));
        let row = rendered.lines().nth(1).expect("one row");
        assert_eq!(row.chars().count(), 50, "{row}");
        assert!(row.ends_with('…'), "{row}");
    }

    #[test]
    fn tool_json_parses_schema() {
        let json = tool_json(&Output::new(true), tool("read", true, "Read"));
        let value = serde_json::to_value(&json).expect("serializes");
        assert_eq!(value["input_schema"], serde_json::json!({"type": "object"}));
        assert_eq!(value["destructive"], Value::Bool(true));
        assert_eq!(value["app"], "notes");
        assert_eq!(value["name"], "read");
        assert_eq!(value["description"], "Read");
    }

    #[test]
    fn schema_empty_or_invalid_is_null() {
        assert_eq!(parse_schema("").expect("empty is null"), Value::Null);
        assert!(parse_schema("{").is_err());
    }
}
