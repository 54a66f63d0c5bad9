//! The calendar app over MCP: create, list by day, input errors and persistence.

mod common;

use common::{call, error_text, start, stop, structured, text, tool, tool_names, tools};
use serde_json::{json, Value};

const BINARY: &str = env!("CARGO_BIN_EXE_bulkhead-app-calendar");

#[tokio::test]
async fn calendar_tools_are_listed() {
    let state = tempfile::tempdir().expect("create state dir");
    let client = start(BINARY, state.path()).await;

    let listed = tools(&client).await;
    let names: Vec<String> = tool_names(&listed).into_iter().collect();
    assert_eq!(names, ["create_event", "list_events"]);
    let list = tool(&listed, "list_events")
        .annotations
        .clone()
        .expect("annotations");
    assert_eq!(list.read_only_hint, Some(true));
    let create = tool(&listed, "create_event")
        .annotations
        .clone()
        .expect("annotations");
    assert_eq!(create.destructive_hint, Some(false));
    stop(client).await;
}

#[tokio::test]
async fn calendar_create_and_list() {
    let state = tempfile::tempdir().expect("create state dir");
    let client = start(BINARY, state.path()).await;

    // A fresh calendar is empty, and list_events works with no arguments at all.
    let empty = call(&client, "list_events", Value::Null).await;
    assert_eq!(text(&empty), "no events");
    assert_eq!(structured(&empty), &json!({"events": []}));
    assert!(!state.path().join("events.json").exists());

    let dentist = call(
        &client,
        "create_event",
        json!({
            "title": "Dentist",
            "start": "2025-06-03 09:30",
            "duration_minutes": 30,
            "attendees": ["alice@example.org"],
        }),
    )
    .await;
    assert_eq!(
        text(&dentist),
        "created event 1: Dentist, 2025-06-03T09:30:00Z to 2025-06-03T10:00:00Z (30 minutes) \
         with alice@example.org"
    );
    let dentist_json = json!({
        "id": 1,
        "title": "Dentist",
        "start": "2025-06-03T09:30:00Z",
        "end": "2025-06-03T10:00:00Z",
        "duration_minutes": 30,
        "attendees": ["alice@example.org"],
    });
    assert_eq!(structured(&dentist), &dentist_json);

    let standup = call(
        &client,
        "create_event",
        json!({"title": "Standup", "start": "2025-06-02T09:00:00+02:00"}),
    )
    .await;
    let standup_json = json!({
        "id": 2,
        "title": "Standup",
        "start": "2025-06-02T09:00:00+02:00",
        "end": "2025-06-02T10:00:00+02:00",
        "duration_minutes": 60,
        "attendees": [],
    });
    assert_eq!(structured(&standup), &standup_json);

    let all = call(&client, "list_events", json!({})).await;
    assert_eq!(
        text(&all),
        "2: Standup, 2025-06-02T09:00:00+02:00 to 2025-06-02T10:00:00+02:00 (60 minutes)\n\
         1: Dentist, 2025-06-03T09:30:00Z to 2025-06-03T10:00:00Z (30 minutes) \
         with alice@example.org"
    );
    assert_eq!(
        structured(&all),
        &json!({"events": [standup_json.clone(), dentist_json.clone()]})
    );

    let june_3 = call(
        &client,
        "list_events",
        json!({"from": "2025-06-03", "to": "2025-06-03"}),
    )
    .await;
    assert_eq!(structured(&june_3), &json!({"events": [dentist_json]}));

    let until_june_2 = call(&client, "list_events", json!({"to": "2025-06-02"})).await;
    assert_eq!(
        structured(&until_june_2),
        &json!({"events": [standup_json]})
    );

    let july = call(&client, "list_events", json!({"from": "2025-07-01"})).await;
    assert_eq!(text(&july), "no events");
    stop(client).await;

    let stored: Value = serde_json::from_slice(
        &std::fs::read(state.path().join("events.json")).expect("read events.json"),
    )
    .expect("events.json is JSON");
    assert_eq!(stored["events"].as_array().map(Vec::len), Some(2));
    assert!(!state.path().join("events.json.tmp").exists());
}

#[tokio::test]
async fn calendar_bad_dates_are_tool_errors() {
    let state = tempfile::tempdir().expect("create state dir");
    let client = start(BINARY, state.path()).await;

    let bad_start = call(
        &client,
        "create_event",
        json!({"title": "Review", "start": "2025-02-30 10:00"}),
    )
    .await;
    assert_eq!(
        error_text(&bad_start),
        "invalid start \"2025-02-30 10:00\": expected RFC 3339 such as \
         2025-06-02T09:30:00+02:00, or \"YYYY-MM-DD HH:MM\" in UTC"
    );

    let words = call(
        &client,
        "create_event",
        json!({"title": "Review", "start": "next Tuesday"}),
    )
    .await;
    assert!(error_text(&words).starts_with("invalid start \"next Tuesday\""));

    let bad_from = call(&client, "list_events", json!({"from": "June 1"})).await;
    assert_eq!(
        error_text(&bad_from),
        "invalid from date \"June 1\": expected YYYY-MM-DD, e.g. 2025-06-02"
    );

    let reversed = call(
        &client,
        "list_events",
        json!({"from": "2025-06-05", "to": "2025-06-01"}),
    )
    .await;
    assert_eq!(
        error_text(&reversed),
        "from date 2025-06-05 is after to date 2025-06-01; swap them or widen the range"
    );

    let zero = call(
        &client,
        "create_event",
        json!({"title": "Blink", "start": "2025-06-02 10:00", "duration_minutes": 0}),
    )
    .await;
    assert_eq!(
        error_text(&zero),
        "invalid duration_minutes 0: expected 1 to 10080"
    );

    // No failed call stored anything.
    let all = call(&client, "list_events", json!({})).await;
    assert_eq!(structured(&all), &json!({"events": []}));
    stop(client).await;
}

#[tokio::test]
async fn calendar_survives_restart() {
    let state = tempfile::tempdir().expect("create state dir");
    let client = start(BINARY, state.path()).await;
    call(
        &client,
        "create_event",
        json!({"title": "Retro", "start": "2025-06-06 15:00"}),
    )
    .await;
    stop(client).await;

    let client = start(BINARY, state.path()).await;
    let second = call(
        &client,
        "create_event",
        json!({"title": "Planning", "start": "2025-06-05 15:00"}),
    )
    .await;
    assert_eq!(structured(&second)["id"], json!(2));
    let all = call(&client, "list_events", json!({})).await;
    let titles: Vec<&str> = structured(&all)["events"]
        .as_array()
        .expect("events array")
        .iter()
        .map(|event| event["title"].as_str().expect("title"))
        .collect();
    assert_eq!(titles, ["Planning", "Retro"]);
    stop(client).await;
}
