//! End-to-end tests of `apps list`, `tools` and `call` against a canned hub.

mod common;

use common::{exit_code, stderr, stdout, stdout_json, MockHub, PROBLEM_MESSAGE, PROBLEM_PATH};
use serde_json::json;

#[tokio::test]
async fn apps_list_table_and_warnings() {
    let hub = MockHub::start();
    let output = hub.run(&["apps", "list"]).await;

    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let expected = "\
NAME   STATE    CATALOG  TOOLS  DESCRIPTION
notes  ready    -        all    Keeps plain-text notes
mail   stopped  -        2      Reads and sends mail
";
    assert_eq!(stdout(&output), expected);
    assert_eq!(
        stderr(&output),
        format!("warning: {PROBLEM_PATH}: {PROBLEM_MESSAGE}\n")
    );
}

#[tokio::test]
async fn apps_list_json_after_subcommand() {
    let hub = MockHub::start();
    let output = hub.run(&["apps", "list", "--json"]).await;

    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    let json = stdout_json(&output);
    assert_eq!(json["apps"][0]["name"], "notes");
    assert_eq!(json["apps"][0]["exposed_tools"], json!([]));
    assert_eq!(json["apps"][0]["spoke_state"], "ready");
    assert_eq!(json["apps"][1]["exposed_tools"], json!(["read", "send"]));
    assert_eq!(json["apps"][1]["destructive_tools"], json!(["send"]));
    assert_eq!(json["apps"][1]["origin"], "/etc/bulkhead/apps.d/mail.toml");
    assert_eq!(
        json["apps"][1]["manifest_path"],
        "/etc/bulkhead/apps.d/mail.toml"
    );
    assert_eq!(json["apps"][1]["description"], "Reads and sends mail");
    assert_eq!(
        json["problems"],
        json!([{"path": PROBLEM_PATH, "message": PROBLEM_MESSAGE}])
    );
}

#[tokio::test]
async fn tools_table_not_cut_when_piped() {
    let hub = MockHub::start();
    let output = hub.run(&["tools"]).await;

    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let expected = "\
APP    TOOL    DESTRUCTIVE  DESCRIPTION
notes  read    no           Read a note by its path
notes  delete  yes          Delete a note
mail   send    yes          Send a mail to one recipient
";
    assert_eq!(stdout(&output), expected);
    assert_eq!(*hub.received.tool_filters.lock().expect("lock"), [""]);
}

#[tokio::test]
async fn tools_of_one_app_json() {
    let hub = MockHub::start();
    let output = hub.run(&["--json", "tools", "mail"]).await;

    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let expected = json!([{
        "app": "mail",
        "name": "send",
        "description": "Send a mail to one recipient",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
        "destructive": true,
    }]);
    assert_eq!(stdout_json(&output), expected);
    assert_eq!(*hub.received.tool_filters.lock().expect("lock"), ["mail"]);
}

#[tokio::test]
async fn tools_of_app_without_tools() {
    let hub = MockHub::start();
    let output = hub.run(&["tools", "empty"]).await;

    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout(&output), "app empty exposes no tools\n");
}

#[tokio::test]
async fn tools_of_unknown_app_is_one_line_error() {
    let hub = MockHub::start();
    let output = hub.run(&["tools", "ghost"]).await;

    assert_eq!(exit_code(&output), 1);
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        "error: app ghost is not registered; list apps with `bulkhead apps list`\n"
    );
}

#[tokio::test]
async fn call_prints_text_and_sends_args() {
    let hub = MockHub::start();
    let output = hub
        .run(&[
            "call",
            "notes",
            "read",
            "--args",
            r#"{ "path": "todo.txt" }"#,
        ])
        .await;

    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout(&output), "buy milk\n");
    assert_eq!(stderr(&output), "");
    let calls = hub.received.calls.lock().expect("lock");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].app, "notes");
    assert_eq!(calls[0].tool, "read");
    assert_eq!(calls[0].arguments_json, r#"{"path":"todo.txt"}"#);
    assert_eq!(calls[0].session_id, "");
}

#[tokio::test]
async fn call_without_args_sends_empty() {
    let hub = MockHub::start();
    let output = hub.run(&["call", "notes", "read"]).await;

    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert_eq!(
        hub.received.calls.lock().expect("lock")[0].arguments_json,
        ""
    );
}

#[tokio::test]
async fn call_reads_args_from_stdin() {
    let hub = MockHub::start();
    let output = hub
        .run_with_stdin(
            &["call", "notes", "read", "--args", "-"],
            "{\"path\": \"a b.txt\"}\n",
        )
        .await;

    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let calls = hub.received.calls.lock().expect("lock");
    assert_eq!(calls[0].arguments_json, r#"{"path":"a b.txt"}"#);
}

#[tokio::test]
async fn call_json_prints_result() {
    let hub = MockHub::start();
    let output = hub.run(&["call", "notes", "read", "--json"]).await;

    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let expected = json!({"content": [{"type": "text", "text": "buy milk"}], "isError": false});
    assert_eq!(stdout_json(&output), expected);
}

#[tokio::test]
async fn call_tool_error_exits_one() {
    let hub = MockHub::start();
    let output = hub.run(&["call", "notes", "fail"]).await;

    assert_eq!(exit_code(&output), 1);
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        "error: tool notes/fail failed: no note at missing.txt\n"
    );
}

#[tokio::test]
async fn call_tool_error_json_exits_one() {
    let hub = MockHub::start();
    let output = hub.run(&["--json", "call", "notes", "fail"]).await;

    assert_eq!(exit_code(&output), 1);
    assert_eq!(stdout_json(&output)["isError"], true);
    assert_eq!(stderr(&output), "");
}

#[tokio::test]
async fn call_rejects_non_object_args_locally() {
    let hub = MockHub::start();
    let output = hub
        .run(&["call", "notes", "read", "--args", "[1, 2]"])
        .await;

    assert_eq!(exit_code(&output), 1);
    let message = stderr(&output);
    assert!(
        message.starts_with("error: --args must be a JSON object, not an array;"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(hub.received.calls.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn call_rejects_invalid_json_with_position() {
    let hub = MockHub::start();
    let output = hub
        .run(&["call", "notes", "read", "--args", "{\"path\": ]}"])
        .await;

    assert_eq!(exit_code(&output), 1);
    let message = stderr(&output);
    assert!(
        message.starts_with("error: --args is not valid JSON: expected value at line 1 column 10;"),
        "{message}"
    );
    assert!(hub.received.calls.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn call_unknown_tool_passes_hub_message() {
    let hub = MockHub::start();
    let output = hub.run(&["call", "notes", "nope"]).await;

    assert_eq!(exit_code(&output), 1);
    assert_eq!(
        stderr(&output),
        "error: app notes has no tool nope; list its tools with `bulkhead tools notes`\n"
    );
}

#[tokio::test]
async fn call_unavailable_spoke_passes_hub_message() {
    let hub = MockHub::start();
    let output = hub.run(&["call", "notes", "crash"]).await;

    assert_eq!(exit_code(&output), 1);
    assert_eq!(
        stderr(&output),
        "error: spoke notes exited (killed by SIGKILL); it restarts in 2s, so retry then\n"
    );
}

#[tokio::test]
async fn call_internal_error_points_at_log() {
    let hub = MockHub::start();
    let output = hub.run(&["call", "notes", "boom"]).await;

    assert_eq!(exit_code(&output), 1);
    assert_eq!(
        stderr(&output),
        "error: the hub failed on CallTool: audit log write failed; check the hub's log \
         (`journalctl -u bulkhead`)\n"
    );
}

#[tokio::test]
async fn call_deadline_expires() {
    let hub = MockHub::start();
    let started = std::time::Instant::now();
    let output = hub
        .run(&["--timeout", "300ms", "call", "notes", "slow"])
        .await;

    assert_eq!(exit_code(&output), 1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let message = stderr(&output);
    assert!(
        message.starts_with(
            "error: the hub did not answer CallTool within 300ms; retry with a longer --timeout"
        ),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "{message}");
}
