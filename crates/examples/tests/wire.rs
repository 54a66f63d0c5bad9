//! Raw JSON-RPC over stdio, as a client other than rmcp would send it, and start-up failures.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const MAIL: &str = env!("CARGO_BIN_EXE_bulkhead-app-mail");
const NOTES: &str = env!("CARGO_BIN_EXE_bulkhead-app-notes");

/// Upper bound on a whole raw exchange.
const RUN_TIMEOUT: Duration = Duration::from_secs(20);

/// Sends `requests` as JSON lines, closes stdin and returns every stdout line parsed as JSON.
/// Panics if the app prints anything on stdout that is not JSON.
fn exchange(binary: &str, state_dir: &std::path::Path, requests: &[Value]) -> Vec<Value> {
    let mut child = Command::new(binary)
        .env_clear()
        .env("BULKHEAD_STATE_DIR", state_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the app");

    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map(|line| line.expect("read stdout"))
            .collect::<Vec<String>>()
    });

    // Pause after each request so that its response is sent before the next request arrives,
    // because the initialized notification must follow the initialize response.
    for request in requests {
        writeln!(stdin, "{request}").expect("write request");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stdin);

    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        if child.try_wait().expect("poll the app").is_some() {
            break;
        }
        if Instant::now() > deadline {
            child.kill().expect("kill the app");
            child.wait().expect("reap the app");
            panic!("the app did not exit after stdin closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    reader
        .join()
        .expect("stdout reader")
        .iter()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|_| panic!("non-JSON stdout line: {line}"))
        })
        .collect()
}

fn response(responses: &[Value], id: u64) -> &Value {
    responses
        .iter()
        .find(|message| message["id"] == json!(id))
        .unwrap_or_else(|| panic!("no response with id {id} in {responses:?}"))
}

#[test]
fn wire_format_for_2025_client() {
    let state = tempfile::tempdir().expect("create state dir");
    let responses = exchange(
        MAIL,
        state.path(),
        &[
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "wire-test", "version": "1"},
            }}),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
                "name": "read_mail", "arguments": {"id": "nope"},
            }}),
        ],
    );

    let init = &response(&responses, 1)["result"];
    assert_eq!(init["protocolVersion"], json!("2025-06-18"));
    assert_eq!(init["serverInfo"]["name"], json!("bulkhead-app-mail"));
    assert!(init["capabilities"]["tools"].is_object(), "{init}");

    let tools = response(&responses, 2)["result"]["tools"]
        .as_array()
        .expect("tools array")
        .clone();
    let send = tools
        .iter()
        .find(|tool| tool["name"] == json!("send_mail"))
        .expect("send_mail listed");
    assert_eq!(send["annotations"]["destructiveHint"], json!(true));
    assert_eq!(
        send["inputSchema"]["required"],
        json!(["to", "subject", "body"])
    );
    for tool in &tools {
        assert!(
            tool["description"].as_str().is_some_and(|d| d.len() > 40),
            "tool without a real description: {tool}"
        );
    }

    let missing = &response(&responses, 3)["result"];
    assert_eq!(missing["isError"], json!(true));
    assert_eq!(
        missing["content"][0]["text"],
        json!("no message with id \"nope\"; search_mail returns the ids of existing messages")
    );
}

#[test]
fn missing_state_dir_fails_start() {
    let state = tempfile::tempdir().expect("create state dir");
    let missing = state.path().join("absent");
    let output = Command::new(NOTES)
        .env_clear()
        .env("BULKHEAD_STATE_DIR", &missing)
        .stdin(Stdio::null())
        .output()
        .expect("run the app");

    assert!(
        !output.status.success(),
        "the app started without a state dir"
    );
    assert!(
        output.stdout.is_empty(),
        "stdout must carry only MCP messages"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    assert!(stderr.contains("set BULKHEAD_STATE_DIR"), "{stderr}");
}
