//! A minimal MCP client over a child process's stdin and stdout, for the baselines that run the
//! app without the hub: newline-delimited JSON-RPC 2.0, one request in flight at a time.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// MCP protocol revision the client offers in `initialize`.
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// Time allowed for one response, including the app's start for `initialize`.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(20);

/// Time allowed for the app to exit after its stdin closes, before it is killed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(2);

/// Lines that are not JSON-RPC messages, such as a banner, that one request may skip.
const MAX_SKIPPED_LINES: usize = 100;

/// An MCP server running as a child process. Dropping it kills the child.
pub struct McpChild {
    name: String,
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

impl McpChild {
    /// Spawns `command` with piped stdin and stdout and discarded stderr. `name` labels errors.
    pub fn spawn(name: &str, mut command: Command) -> Result<McpChild> {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("failed to start {name}"))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| anyhow!("{name}: stdin is not piped"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("{name}: stdout is not piped"))?;
        Ok(McpChild {
            name: name.to_string(),
            child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
            next_id: 1,
        })
    }

    /// Sends `initialize`, checks the reply and sends `notifications/initialized`.
    pub async fn initialize(&mut self) -> Result<()> {
        let params = json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "bulkhead-bench", "version": env!("CARGO_PKG_VERSION")},
        });
        let result = self.request("initialize", params).await?;
        if result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .is_none()
        {
            bail!(
                "{}: the initialize result has no protocolVersion: {result}",
                self.name
            );
        }
        self.notify("notifications/initialized").await
    }

    /// Sends `tools/list` and returns the tool names.
    pub async fn list_tools(&mut self) -> Result<Vec<String>> {
        let result = self.request("tools/list", json!({})).await?;
        let tools = result
            .get("tools")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("{}: the tools/list result has no tools array", self.name))?;
        let names = tools
            .iter()
            .filter_map(|tool| tool.get("name").and_then(Value::as_str))
            .map(str::to_string)
            .collect();
        Ok(names)
    }

    /// Sends `tools/call` and fails when the result has `isError` set.
    pub async fn call_tool(&mut self, tool: &str, arguments: Value) -> Result<()> {
        self.call_tool_text(tool, arguments).await.map(drop)
    }

    /// Sends `tools/call`, fails when the result has `isError` set, and returns the result's text
    /// items joined by newlines.
    pub async fn call_tool_text(&mut self, tool: &str, arguments: Value) -> Result<String> {
        let params = json!({"name": tool, "arguments": arguments});
        let result = self.request("tools/call", params).await?;
        if result.get("isError").and_then(Value::as_bool) == Some(true) {
            bail!("{}: tool {tool} returned an error: {result}", self.name);
        }
        let texts: Vec<&str> = result
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|item| item.get("text").and_then(Value::as_str))
            .collect();
        Ok(texts.join("\n"))
    }

    /// Closes stdin, which ends the MCP session so that the server exits, and kills it if it has not exited in time.
    pub async fn stop(mut self) {
        drop(self.stdin);
        if tokio::time::timeout(EXIT_TIMEOUT, self.child.wait())
            .await
            .is_err()
        {
            // A failed kill means the child is already gone, which is the goal.
            let _ = self.child.kill().await;
        }
    }

    async fn notify(&mut self, method: &str) -> Result<()> {
        self.send(&json!({"jsonrpc": "2.0", "method": method}))
            .await
    }

    /// Sends one request and returns the `result` of the response with the same id.
    async fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;

        let response = tokio::time::timeout(RESPONSE_TIMEOUT, self.read_response(id))
            .await
            .map_err(|_| {
                anyhow!(
                    "{}: no {method} response within {RESPONSE_TIMEOUT:?}",
                    self.name
                )
            })??;
        if let Some(error) = response.get("error") {
            bail!("{}: {method} failed: {error}", self.name);
        }
        response.get("result").cloned().ok_or_else(|| {
            anyhow!(
                "{}: the {method} response has no result: {response}",
                self.name
            )
        })
    }

    async fn send(&mut self, message: &Value) -> Result<()> {
        let mut line = message.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .with_context(|| {
                format!(
                    "{}: failed to write to its stdin; it may have exited",
                    self.name
                )
            })?;
        self.stdin
            .flush()
            .await
            .with_context(|| format!("{}: failed to flush its stdin", self.name))
    }

    /// Reads lines until the response to `id`, skipping notifications and non-JSON lines.
    async fn read_response(&mut self, id: u64) -> Result<Value> {
        let mut skipped = 0;
        loop {
            let line = self
                .stdout
                .next_line()
                .await
                .with_context(|| format!("{}: failed to read its stdout", self.name))?
                .ok_or_else(|| {
                    anyhow!(
                        "{}: closed its stdout before responding; it may have crashed",
                        self.name
                    )
                })?;
            match serde_json::from_str::<Value>(&line) {
                Ok(message) if message.get("id").and_then(Value::as_u64) == Some(id) => {
                    return Ok(message)
                }
                _ => skipped += 1,
            }
            if skipped > MAX_SKIPPED_LINES {
                bail!(
                    "{}: more than {MAX_SKIPPED_LINES} lines without the response to request {id}",
                    self.name
                );
            }
        }
    }
}
