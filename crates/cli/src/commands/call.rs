//! `bulkhead call APP TOOL [--args JSON]`.

use std::io::{self, Read};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use bulkhead_proto::v1::{CallToolRequest, CallToolResponse};
use serde_json::Value;

use super::connect;
use crate::args::{CallArgs, GlobalOptions};
use crate::output::Output;

/// An example for error messages about `--args`.
const ARGS_EXAMPLE: &str = r#"--args '{"path": "todo.txt"}'"#;

pub async fn run(global: &GlobalOptions, output: &Output, call: CallArgs) -> Result<ExitCode> {
    let arguments_json = match call.arguments.as_deref() {
        None => String::new(),
        Some("-") => parse_arguments(&read_stdin()?, "--args -")?,
        Some(text) => parse_arguments(text, "--args")?,
    };
    let request = CallToolRequest {
        app: call.app.clone(),
        tool: call.tool.clone(),
        arguments_json,
        session_id: call.session.clone(),
    };
    let reply = connect(global).await?.call_tool(request).await?;

    if output.json {
        output.print_json(&parse_result(&reply)?)?;
    } else if reply.is_error {
        let text = reply.text.trim_end();
        output.print_stderr(&format!(
            "error: tool {}/{} failed: {text}",
            call.app, call.tool
        ));
    } else {
        output.print_text(&human_text(&reply)?)?;
    }

    Ok(if reply.is_error {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Checks that `text` is one JSON object and returns it in compact form. `source` names where the
/// text came from, for the error message.
fn parse_arguments(text: &str, source: &str) -> Result<String> {
    if text.trim().is_empty() {
        bail!("{source} is empty; pass a JSON object such as {ARGS_EXAMPLE}, or leave out --args to pass {{}}");
    }
    let value: Value = serde_json::from_str(text).map_err(|err| {
        anyhow!("{source} is not valid JSON: {err}; pass a JSON object such as {ARGS_EXAMPLE}")
    })?;
    if !value.is_object() {
        bail!(
            "{source} must be a JSON object, not {}; wrap the arguments in braces, such as {ARGS_EXAMPLE}",
            json_kind(&value)
        );
    }
    Ok(value.to_string())
}

fn read_stdin() -> Result<String> {
    let mut text = String::new();
    io::stdin()
        .read_to_string(&mut text)
        .map_err(|err| anyhow!("cannot read --args from stdin: {err}; pipe a JSON object in"))?;
    Ok(text)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses the MCP CallToolResult that the hub relays as JSON text.
fn parse_result(reply: &CallToolResponse) -> Result<Value> {
    serde_json::from_str(&reply.result_json).map_err(|err| {
        anyhow!(
            "the hub returned a tool result that is not valid JSON ({err}); check the hub's log \
             (`journalctl -u bulkhead`)"
        )
    })
}

/// Returns the human output of a successful call: the text items of the result, or the
/// structured content, pretty-printed, when the result has no text.
fn human_text(reply: &CallToolResponse) -> Result<String> {
    if !reply.text.is_empty() || reply.result_json.is_empty() {
        return Ok(reply.text.clone());
    }
    let result = parse_result(reply)?;
    match result.get("structuredContent") {
        Some(structured) if !structured.is_null() => Ok(serde_json::to_string_pretty(structured)?),
        _ => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(text: &str, result_json: &str) -> CallToolResponse {
        CallToolResponse {
            result_json: result_json.into(),
            is_error: false,
            text: text.into(),
        }
    }

    #[test]
    fn arguments_object_is_compacted() {
        let compact = parse_arguments("{ \"path\" : \"a.txt\",\n \"n\": 2 }", "--args");
        assert_eq!(compact.expect("valid object"), r#"{"n":2,"path":"a.txt"}"#);
    }

    #[test]
    fn arguments_empty_object() {
        assert_eq!(parse_arguments("{}", "--args").expect("valid object"), "{}");
    }

    #[test]
    fn arguments_invalid_json_shows_position() {
        let err = parse_arguments("{\"path\": }", "--args").expect_err("invalid JSON");
        let message = err.to_string();
        assert!(
            message.starts_with("--args is not valid JSON: "),
            "{message}"
        );
        assert!(message.contains("line 1 column 10"), "{message}");
        assert!(message.contains(ARGS_EXAMPLE), "{message}");
    }

    #[test]
    fn arguments_trailing_garbage_rejected() {
        let err = parse_arguments("{} {}", "--args").expect_err("two documents");
        assert!(
            err.to_string()
                .contains("trailing characters at line 1 column 4"),
            "{err}"
        );
    }

    #[test]
    fn arguments_must_be_object() {
        let cases = [
            ("[1, 2]", "an array"),
            ("\"x\"", "a string"),
            ("3", "a number"),
            ("true", "a boolean"),
            ("null", "null"),
        ];
        for (text, kind) in cases {
            let err = parse_arguments(text, "--args").expect_err("not an object");
            let expected = format!("--args must be a JSON object, not {kind};");
            assert!(err.to_string().starts_with(&expected), "{text}: {err}");
        }
    }

    #[test]
    fn arguments_empty_stdin_rejected() {
        let err = parse_arguments(" \n", "--args -").expect_err("empty");
        assert!(err.to_string().starts_with("--args - is empty;"), "{err}");
    }

    #[test]
    fn human_text_prefers_text() {
        let text = human_text(&reply("hello", r#"{"content":[]}"#)).expect("text");
        assert_eq!(text, "hello");
    }

    #[test]
    fn human_text_falls_back_to_structured_content() {
        let result = r#"{"content":[],"structuredContent":{"count":2}}"#;
        let text = human_text(&reply("", result)).expect("text");
        assert_eq!(text, "{\n  \"count\": 2\n}");
    }

    #[test]
    fn invalid_result_json_is_error() {
        let err = parse_result(&reply("", "{not json")).expect_err("invalid");
        assert!(
            err.to_string()
                .starts_with("the hub returned a tool result"),
            "{err}"
        );
    }
}
