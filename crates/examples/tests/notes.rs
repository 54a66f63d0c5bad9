//! The notes app over MCP: add, list, search, and persistence across restarts.

mod common;

use chrono::DateTime;
use common::{call, error_text, start, stop, structured, text, tool, tool_names, tools};
use serde_json::json;

const BINARY: &str = env!("CARGO_BIN_EXE_bulkhead-app-notes");

#[tokio::test]
async fn notes_tools_are_listed() {
    let state = tempfile::tempdir().expect("create state dir");
    let client = start(BINARY, state.path()).await;

    let listed = tools(&client).await;
    let names: Vec<String> = tool_names(&listed).into_iter().collect();
    assert_eq!(names, ["add_note", "list_notes", "search_notes"]);

    let add = tool(&listed, "add_note")
        .annotations
        .clone()
        .expect("annotations");
    assert_eq!(add.read_only_hint, Some(false));
    assert_eq!(add.destructive_hint, Some(false));
    let list = tool(&listed, "list_notes")
        .annotations
        .clone()
        .expect("annotations");
    assert_eq!(list.read_only_hint, Some(true));
    assert!(tool(&listed, "search_notes").output_schema.is_some());

    let server = client.peer_info().expect("server info");
    let implementation = server.server_info.as_ref().expect("server implementation");
    assert_eq!(implementation.name, "bulkhead-app-notes");
    stop(client).await;
}

#[tokio::test]
async fn notes_add_list_search() {
    let state = tempfile::tempdir().expect("create state dir");
    let client = start(BINARY, state.path()).await;

    let empty = call(&client, "list_notes", json!({})).await;
    assert_eq!(text(&empty), "no notes yet");
    assert_eq!(structured(&empty), &json!({"notes": []}));

    let first = call(
        &client,
        "add_note",
        json!({"title": "Groceries", "body": "Milk, eggs and BREAD"}),
    )
    .await;
    assert_eq!(text(&first), "added note 1: Groceries");
    let first_at = structured(&first)["created_at"]
        .as_str()
        .expect("created_at")
        .to_owned();
    assert_eq!(
        structured(&first),
        &json!({"id": 1, "title": "Groceries", "created_at": first_at})
    );
    assert!(first_at.ends_with('Z'), "{first_at}");
    DateTime::parse_from_rfc3339(&first_at).expect("created_at is RFC 3339");

    let second = call(
        &client,
        "add_note",
        json!({"title": "  Trip plan ", "body": "Book the train to Lyon"}),
    )
    .await;
    assert_eq!(text(&second), "added note 2: Trip plan");
    let second_at = structured(&second)["created_at"]
        .as_str()
        .expect("created_at")
        .to_owned();

    let listed = call(&client, "list_notes", json!({})).await;
    assert_eq!(
        text(&listed),
        format!("1. Groceries (created {first_at})\n2. Trip plan (created {second_at})")
    );
    assert_eq!(
        structured(&listed),
        &json!({"notes": [
            {"id": 1, "title": "Groceries", "created_at": first_at},
            {"id": 2, "title": "Trip plan", "created_at": second_at},
        ]})
    );

    let found = call(&client, "search_notes", json!({"query": "bread"})).await;
    assert_eq!(
        text(&found),
        format!("1. Groceries (created {first_at})\nMilk, eggs and BREAD")
    );
    assert_eq!(
        structured(&found),
        &json!({"notes": [{
            "id": 1, "title": "Groceries", "body": "Milk, eggs and BREAD", "created_at": first_at
        }]})
    );

    let by_title = call(&client, "search_notes", json!({"query": "TRIP"})).await;
    assert_eq!(structured(&by_title)["notes"][0]["id"], json!(2));

    let none = call(&client, "search_notes", json!({"query": "pottery"})).await;
    assert_eq!(text(&none), "no notes match \"pottery\"");
    assert_eq!(structured(&none), &json!({"notes": []}));
    stop(client).await;

    let log = std::fs::read_to_string(state.path().join("notes.jsonl")).expect("read notes log");
    assert_eq!(log.lines().count(), 2);
}

#[tokio::test]
async fn notes_survive_restart() {
    let state = tempfile::tempdir().expect("create state dir");
    let client = start(BINARY, state.path()).await;
    call(
        &client,
        "add_note",
        json!({"title": "One", "body": "first"}),
    )
    .await;
    call(
        &client,
        "add_note",
        json!({"title": "Two", "body": "second"}),
    )
    .await;
    stop(client).await;

    let client = start(BINARY, state.path()).await;
    let listed = call(&client, "list_notes", json!({})).await;
    let titles: Vec<&str> = structured(&listed)["notes"]
        .as_array()
        .expect("notes array")
        .iter()
        .map(|note| note["title"].as_str().expect("title"))
        .collect();
    assert_eq!(titles, ["One", "Two"]);

    let third = call(&client, "add_note", json!({"title": "Three", "body": ""})).await;
    assert_eq!(text(&third), "added note 3: Three");
    stop(client).await;
}

#[tokio::test]
async fn notes_reject_bad_title() {
    let state = tempfile::tempdir().expect("create state dir");
    let client = start(BINARY, state.path()).await;

    let blank = call(&client, "add_note", json!({"title": "  ", "body": "x"})).await;
    assert_eq!(
        error_text(&blank),
        "title is empty; give a short one-line title"
    );

    let two_lines = call(&client, "add_note", json!({"title": "a\nb", "body": "x"})).await;
    assert_eq!(
        error_text(&two_lines),
        "title contains a line break or control character; give a single line"
    );

    let listed = call(&client, "list_notes", json!({})).await;
    assert_eq!(structured(&listed), &json!({"notes": []}));
    stop(client).await;
}
