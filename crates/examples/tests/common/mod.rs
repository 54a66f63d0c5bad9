//! Helpers that run an example app as a child process and talk MCP to it over stdio.

#![allow(dead_code)] // Each test binary uses a different subset of these helpers.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use rmcp::{
    model::{CallToolRequestParams, CallToolResult, Tool},
    service::RunningService,
    transport::TokioChildProcess,
    RoleClient, ServiceExt,
};
use serde_json::Value;

/// Upper bound on every MCP exchange with an app, so that a hung app fails the test.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(20);

pub type Client = RunningService<RoleClient, ()>;

/// Starts `binary` with an environment that contains only `BULKHEAD_STATE_DIR`, as in the
/// sandbox, plus `RUST_LOG=warn` to keep test output short, and completes the MCP initialize
/// handshake.
pub async fn start(binary: &str, state_dir: &Path) -> Client {
    let mut command = tokio::process::Command::new(binary);
    command
        .env_clear()
        .env("BULKHEAD_STATE_DIR", state_dir)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    let transport = TokioChildProcess::new(command).expect("spawn the app");
    tokio::time::timeout(EXCHANGE_TIMEOUT, ().serve(transport))
        .await
        .expect("initialize timed out")
        .expect("initialize failed")
}

/// Closes the connection and waits for the client task to end.
pub async fn stop(client: Client) {
    tokio::time::timeout(EXCHANGE_TIMEOUT, client.cancel())
        .await
        .expect("shutdown timed out")
        .expect("client task failed");
}

/// Lists the app's tools.
pub async fn tools(client: &Client) -> Vec<Tool> {
    tokio::time::timeout(EXCHANGE_TIMEOUT, client.list_all_tools())
        .await
        .expect("tools/list timed out")
        .expect("tools/list failed")
}

/// Returns the tool names as a sorted set.
pub fn tool_names(tools: &[Tool]) -> BTreeSet<String> {
    tools.iter().map(|tool| tool.name.to_string()).collect()
}

/// Returns the tool called `name`.
pub fn tool<'a>(tools: &'a [Tool], name: &str) -> &'a Tool {
    tools
        .iter()
        .find(|tool| tool.name == name)
        .unwrap_or_else(|| panic!("tool {name} is not listed"))
}

/// Calls tool `name` with `arguments`, which must be a JSON object or null for no arguments.
pub async fn call(client: &Client, name: &'static str, arguments: Value) -> CallToolResult {
    let mut params = CallToolRequestParams::new(name);
    if let Value::Object(map) = arguments {
        params = params.with_arguments(map);
    }
    tokio::time::timeout(EXCHANGE_TIMEOUT, client.call_tool(params))
        .await
        .unwrap_or_else(|_| panic!("tools/call {name} timed out"))
        .unwrap_or_else(|err| panic!("tools/call {name} failed: {err}"))
}

/// Returns the text of the only content block of `result`.
pub fn text(result: &CallToolResult) -> &str {
    assert_eq!(
        result.content.len(),
        1,
        "expected one content block: {result:?}"
    );
    result.content[0]
        .as_text()
        .map(|text| text.text.as_str())
        .unwrap_or_else(|| panic!("content is not text: {result:?}"))
}

/// Returns the structured content of a successful result.
pub fn structured(result: &CallToolResult) -> &Value {
    assert_eq!(result.is_error, Some(false), "tool failed: {result:?}");
    result
        .structured_content
        .as_ref()
        .unwrap_or_else(|| panic!("no structured content: {result:?}"))
}

/// Returns the error text of a failed result.
pub fn error_text(result: &CallToolResult) -> &str {
    assert_eq!(
        result.is_error,
        Some(true),
        "expected a tool error: {result:?}"
    );
    text(result)
}
