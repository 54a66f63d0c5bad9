//! End-to-end tests of `apps add|remove`, `spokes`, `status`, `reload` and `version` against a
//! canned hub.

mod common;

use common::{
    exit_code, run_bulkhead, stderr, stdout, stdout_json, MockHub, PROBLEM_MESSAGE, PROBLEM_PATH,
};
use serde_json::json;

const MANIFEST: &str = "name = \"scratch\"\ncommand = [\"/usr/bin/scratch-mcp\"]\n";

#[tokio::test]
async fn apps_add_sends_manifest_and_origin() {
    let hub = MockHub::start();
    let manifest = hub.dir.path().join("scratch.toml");
    std::fs::write(&manifest, MANIFEST).expect("write manifest");
    let manifest_arg = manifest.to_str().expect("UTF-8 path");

    let output = hub.run(&["apps", "add", manifest_arg]).await;

    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout(&output), "registered app scratch\n");
    let registered = hub.received.registered.lock().expect("lock");
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0].manifest_toml, MANIFEST);
    assert_eq!(registered[0].origin, manifest_arg);
    assert!(!registered[0].replace);
}

#[tokio::test]
async fn apps_add_replace_json() {
    let hub = MockHub::start();
    let manifest = hub.dir.path().join("notes.toml");
    std::fs::write(&manifest, "name = \"notes\"\n").expect("write manifest");
    let manifest_arg = manifest.to_str().expect("UTF-8 path");

    let output = hub
        .run(&["apps", "add", manifest_arg, "--replace", "--json"])
        .await;

    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let json = stdout_json(&output);
    assert_eq!(json["name"], "notes");
    assert_eq!(json["origin"], "registered");
    assert_eq!(json["spoke_state"], "stopped");
    assert!(hub.received.registered.lock().expect("lock")[0].replace);
}

#[tokio::test]
async fn apps_add_existing_passes_hub_message() {
    let hub = MockHub::start();
    let manifest = hub.dir.path().join("notes.toml");
    std::fs::write(&manifest, "name = \"notes\"\n").expect("write manifest");

    let output = hub
        .run(&["apps", "add", manifest.to_str().expect("UTF-8 path")])
        .await;

    assert_eq!(exit_code(&output), 1);
    assert_eq!(
        stderr(&output),
        "error: app notes is already registered; pass --replace to replace it\n"
    );
}

#[tokio::test]
async fn apps_add_reads_stdin() {
    let hub = MockHub::start();
    let output = hub.run_with_stdin(&["apps", "add", "-"], MANIFEST).await;

    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let registered = hub.received.registered.lock().expect("lock");
    assert_eq!(registered[0].manifest_toml, MANIFEST);
    assert_eq!(registered[0].origin, "stdin");
}

#[tokio::test]
async fn apps_add_missing_file_fails_before_connecting() {
    let output = run_bulkhead(
        Some(std::path::Path::new("/nonexistent/hub.sock")),
        &["apps", "add", "/nonexistent/scratch.toml"],
        None,
    )
    .await;

    assert_eq!(exit_code(&output), 1);
    assert_eq!(
        stderr(&output),
        "error: cannot read manifest /nonexistent/scratch.toml: no such file or directory; check \
         the path\n"
    );
}

#[tokio::test]
async fn apps_remove_human_and_json() {
    let hub = MockHub::start();

    let output = hub.run(&["apps", "remove", "scratch"]).await;
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout(&output), "removed app scratch\n");

    let output = hub.run(&["apps", "remove", "scratch", "--json"]).await;
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout_json(&output), json!({"removed": "scratch"}));

    assert_eq!(
        *hub.received.removed.lock().expect("lock"),
        ["scratch", "scratch"]
    );
}

#[tokio::test]
async fn apps_remove_precondition_passes_hub_message() {
    let hub = MockHub::start();
    let output = hub.run(&["apps", "remove", "notes"]).await;

    assert_eq!(exit_code(&output), 1);
    assert_eq!(
        stderr(&output),
        "error: app notes comes from the apps folder; delete /etc/bulkhead/apps.d/notes.toml and \
         run `bulkhead reload`\n"
    );
}

#[tokio::test]
async fn spokes_table() {
    let hub = MockHub::start();
    let output = hub.run(&["spokes"]).await;

    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let expected = "\
APP    STATE    PID   APP_PID  MEMORY    CALLS  NET_SENT  NET_RECEIVED  NET_REFUSED  RESTARTS  LAST_EXIT
notes  ready    4242  4250     25.5 MiB  12     0 B       0 B           0            1         killed by SIGKILL
mail   backoff  -     -        0 B       0      0 B       0 B           0            3         out of memory
";
    assert_eq!(stdout(&output), expected);
}

#[tokio::test]
async fn spokes_json_numbers() {
    let hub = MockHub::start();
    let output = hub.run(&["spokes", "--json"]).await;

    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let json = stdout_json(&output);
    assert_eq!(
        json[0],
        json!({
            "app": "notes",
            "pid": 4242,
            "app_pid": 4250,
            "state": "ready",
            "started_at_ms": 1_700_000_000_123_u64,
            "restarts": 1,
            "last_exit": "killed by SIGKILL",
            "memory_bytes": 25 * 1024 * 1024 + 512 * 1024,
            "calls": 12,
            "egress_open": 0,
            "egress_connections": 0,
            "egress_refused": 0,
            "egress_bytes_sent": 0,
            "egress_bytes_received": 0,
        })
    );
    assert_eq!(json.as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn status_line() {
    let hub = MockHub::start();
    let output = hub.run(&["status"]).await;

    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let expected = format!(
        "bulkheadd 0.1.0, up 2h 3m, 2 apps, 1 spoke, 3 pending approvals, socket {}, 1 manifest \
         problem (see `bulkhead apps list`)",
        hub.socket.display()
    );
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], expected);
    assert!(lines[1].starts_with("APP"), "no spoke table header: {text}");
    assert!(lines[2].starts_with("notes") && lines[2].contains("ready") && lines[2].contains("25.5 MiB"), "{text}");
    assert!(lines[3].starts_with("mail") && lines[3].contains("backoff"), "{text}");
}

#[tokio::test]
async fn status_json() {
    let hub = MockHub::start();
    let output = hub.run(&["status", "--json"]).await;

    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let expected = json!({
        "version": "0.1.0",
        "uptime_seconds": 7384,
        "apps": 2,
        "spokes": 1,
        "manifest_problems": 1,
        "socket": hub.socket.display().to_string(),
        "pending_approvals": 3,
    });
    let mut status = stdout_json(&output);
    let spokes = status.as_object_mut().and_then(|object| object.remove("spoke_list"));
    assert_eq!(status, expected);
    let spokes = spokes.expect("spoke_list in the status JSON");
    assert_eq!(spokes[0]["app"], "notes");
    assert_eq!(spokes[0]["state"], "ready");
    assert_eq!(spokes[0]["memory_bytes"], 25 * 1024 * 1024 + 512 * 1024);
    assert_eq!(spokes[1]["state"], "backoff");
}

#[tokio::test]
async fn reload_prints_count_and_problems() {
    let hub = MockHub::start();
    let output = hub.run(&["reload"]).await;

    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout(&output), "reloaded: 2 apps\n");
    assert_eq!(
        stderr(&output),
        format!("warning: {PROBLEM_PATH}: {PROBLEM_MESSAGE}\n")
    );

    let output = hub.run(&["reload", "--json"]).await;
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let expected =
        json!({"apps": 2, "problems": [{"path": PROBLEM_PATH, "message": PROBLEM_MESSAGE}]});
    assert_eq!(stdout_json(&output), expected);
}

#[tokio::test]
async fn version_needs_no_hub() {
    let missing = std::path::Path::new("/nonexistent/hub.sock");

    let output = run_bulkhead(Some(missing), &["version"], None).await;
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!("bulkhead {}\n", env!("CARGO_PKG_VERSION"))
    );

    let output = run_bulkhead(Some(missing), &["version", "--json"], None).await;
    assert_eq!(
        stdout_json(&output),
        json!({"version": env!("CARGO_PKG_VERSION")})
    );
}

#[tokio::test]
async fn missing_socket_error_text() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("hub.sock");

    let output = run_bulkhead(Some(&socket), &["status"], None).await;

    assert_eq!(exit_code(&output), 1);
    assert_eq!(stdout(&output), "");
    let expected = format!(
        "error: cannot connect to the hub at {}: no such file; start it with `bulkheadd --config \
         /etc/bulkhead/hub.toml` (or `systemctl start bulkhead`), or point \
         --socket/BULKHEAD_SOCKET at its socket\n",
        socket.display()
    );
    assert_eq!(stderr(&output), expected);
}

#[tokio::test]
async fn socket_from_environment() {
    let hub = MockHub::start();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_bulkhead"));
    command.env("BULKHEAD_SOCKET", &hub.socket).args(["reload"]);

    let output = common::run_command(command, None).await;

    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout(&output), "reloaded: 2 apps\n");
}

#[tokio::test]
async fn stale_socket_is_connection_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("hub.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind socket"));

    let output = run_bulkhead(Some(&socket), &["spokes"], None).await;

    assert_eq!(exit_code(&output), 1);
    let message = stderr(&output);
    assert!(
        message.contains("hub.sock: connection refused, so no hub is listening"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "{message}");
}

#[tokio::test]
async fn usage_error_exits_two() {
    let output = run_bulkhead(None, &["call", "notes"], None).await;
    assert_eq!(exit_code(&output), 2);
    assert!(
        stderr(&output).starts_with("error: "),
        "{}",
        stderr(&output)
    );
}
