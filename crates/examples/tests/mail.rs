//! The mail app over MCP: search and read the built-in inbox, send to the outbox.

mod common;

use common::{call, error_text, start, stop, structured, text, tool, tool_names, tools};
use serde_json::{json, Value};

const BINARY: &str = env!("CARGO_BIN_EXE_bulkhead-app-mail");

#[tokio::test]
async fn mail_tools_mark_send_destructive() {
    let state = tempfile::tempdir().expect("create state dir");
    let client = start(BINARY, state.path()).await;

    let listed = tools(&client).await;
    let names: Vec<String> = tool_names(&listed).into_iter().collect();
    assert_eq!(names, ["read_mail", "search_mail", "send_mail"]);

    let send = tool(&listed, "send_mail")
        .annotations
        .clone()
        .expect("annotations");
    assert_eq!(send.destructive_hint, Some(true));
    assert_eq!(send.read_only_hint, Some(false));
    assert_eq!(send.open_world_hint, Some(true));
    for name in ["search_mail", "read_mail"] {
        let read = tool(&listed, name)
            .annotations
            .clone()
            .expect("annotations");
        assert_eq!(read.read_only_hint, Some(true), "{name}");
    }
    stop(client).await;
}

#[tokio::test]
async fn mail_search_and_read() {
    let state = tempfile::tempdir().expect("create state dir");
    let client = start(BINARY, state.path()).await;

    let invoices = call(&client, "search_mail", json!({"query": "INVOICE"})).await;
    assert_eq!(
        text(&invoices),
        "m1, 2025-05-02T08:15:00Z, from billing@example.com: Invoice INV-2025-0412 for April"
    );
    assert_eq!(
        structured(&invoices),
        &json!({"messages": [{
            "id": "m1",
            "from": "billing@example.com",
            "subject": "Invoice INV-2025-0412 for April",
            "date": "2025-05-02T08:15:00Z",
        }]})
    );

    let by_sender = call(&client, "search_mail", json!({"query": "example.org"})).await;
    let ids: Vec<&str> = structured(&by_sender)["messages"]
        .as_array()
        .expect("messages array")
        .iter()
        .map(|message| message["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["m5", "m3", "m2"]);

    let nothing = call(&client, "search_mail", json!({"query": "zebra"})).await;
    assert_eq!(text(&nothing), "no messages match \"zebra\"");

    let read = call(&client, "read_mail", json!({"id": "m2"})).await;
    let body = "Hi Sam,\n\nCould we meet on Thursday 2025-05-08 at 10:00 UTC for 45 minutes to go \
                through the Q2 roadmap? Bob will join as well.\n\nIf that slot does not work, \
                send me two alternatives and I will book a room.\n\nThanks,\nAlice";
    assert_eq!(
        text(&read),
        format!(
            "From: alice@example.org\nTo: sam@example.net\nDate: 2025-05-05T14:02:00Z\n\
             Subject: Meeting request: Q2 roadmap review\n\n{body}"
        )
    );
    assert_eq!(
        structured(&read),
        &json!({
            "id": "m2",
            "from": "alice@example.org",
            "to": "sam@example.net",
            "subject": "Meeting request: Q2 roadmap review",
            "date": "2025-05-05T14:02:00Z",
            "body": body,
        })
    );

    let missing = call(&client, "read_mail", json!({"id": "m9"})).await;
    assert_eq!(
        error_text(&missing),
        "no message with id \"m9\"; search_mail returns the ids of existing messages"
    );
    stop(client).await;
}

#[tokio::test]
async fn mail_send_appends_to_outbox() {
    let state = tempfile::tempdir().expect("create state dir");
    let client = start(BINARY, state.path()).await;

    let sent = call(
        &client,
        "send_mail",
        json!({
            "to": "alice@example.org",
            "subject": "Re: Meeting request: Q2 roadmap review",
            "body": "Thursday at 10:00 works for me.",
        }),
    )
    .await;
    assert_eq!(text(&sent), "queued message out-1 to alice@example.org");
    let queued_at = structured(&sent)["queued_at"]
        .as_str()
        .expect("queued_at")
        .to_owned();
    let expected = json!({
        "id": "out-1",
        "from": "sam@example.net",
        "to": "alice@example.org",
        "subject": "Re: Meeting request: Q2 roadmap review",
        "body": "Thursday at 10:00 works for me.",
        "queued_at": queued_at,
    });
    assert_eq!(structured(&sent), &expected);

    let bad = call(
        &client,
        "send_mail",
        json!({"to": "alice at example.org", "subject": "Hi", "body": "x"}),
    )
    .await;
    assert_eq!(
        error_text(&bad),
        "invalid recipient \"alice at example.org\": contains a space, comma, semicolon or \
         control character; give one address such as alice@example.org"
    );
    stop(client).await;

    let outbox = std::fs::read_to_string(state.path().join("outbox.jsonl")).expect("read outbox");
    let lines: Vec<Value> = outbox
        .lines()
        .map(|line| serde_json::from_str(line).expect("outbox line is JSON"))
        .collect();
    assert_eq!(lines, vec![expected]);

    // Ids continue after a restart.
    let client = start(BINARY, state.path()).await;
    let again = call(
        &client,
        "send_mail",
        json!({"to": "bob@example.org", "subject": "Slides", "body": "Numbers attached."}),
    )
    .await;
    assert_eq!(text(&again), "queued message out-2 to bob@example.org");
    stop(client).await;
}
