use std::os::unix::fs::PermissionsExt;

use super::*;

fn grant(id: &str, scope: Scope, principal: &str, session: &str) -> Grant {
    Grant {
        id: id.into(),
        scope,
        principal: principal.into(),
        session: session.into(),
        source: "repo_private".into(),
        target: "repo_public".into(),
        tool: "create_pr".into(),
        approver: "uid:0".into(),
        request: "req00001".into(),
        created_at_ms: 1,
    }
}

fn flow<'a>(principal: &'a str, session: &'a str) -> FlowKey<'a> {
    FlowKey { principal, session, source: "repo_private", target: "repo_public", tool: "create_pr" }
}

#[test]
fn missing_file_means_no_grants() {
    let state = tempfile::tempdir().expect("temp dir");
    let store = GrantStore::load(state.path()).expect("load");
    assert!(store.list().is_empty());
    assert!(!state.path().join(FILE_NAME).exists());
}

#[test]
fn only_always_grants_survive_reload() {
    let state = tempfile::tempdir().expect("temp dir");
    let store = GrantStore::load(state.path()).expect("load");
    store.add(grant("a1", Scope::Always, "uid:0", "")).expect("add always");
    store.add(grant("s1", Scope::Session, "uid:0", "s")).expect("add session");
    assert_eq!(store.list().len(), 2);

    let mode = std::fs::metadata(store.path()).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let reloaded = GrantStore::load(state.path()).expect("reload");
    let ids: Vec<String> = reloaded.list().into_iter().map(|grant| grant.id).collect();
    assert_eq!(ids, ["a1"]);
}

#[test]
fn grants_match_their_principal_and_session_only() {
    let state = tempfile::tempdir().expect("temp dir");
    let store = GrantStore::load(state.path()).expect("load");
    store.add(grant("s1", Scope::Session, "uid:0", "s")).expect("add session");
    assert_eq!(store.find(&flow("uid:0", "s")).map(|grant| grant.id), Some("s1".to_string()));
    assert_eq!(store.find(&flow("uid:0", "other")), None);
    assert_eq!(store.find(&flow("uid:0", "")), None);
    assert_eq!(store.find(&flow("uid:65534", "s")), None);

    store.add(grant("a1", Scope::Always, "uid:0", "")).expect("add always");
    assert_eq!(store.find(&flow("uid:0", "")).map(|grant| grant.id), Some("a1".to_string()));
    assert_eq!(store.find(&flow("uid:65534", "")), None);
    let other_tool = FlowKey { tool: "list_issues", ..flow("uid:0", "") };
    assert_eq!(store.find(&other_tool), None);
}

#[test]
fn remove_rewrites_the_file() {
    let state = tempfile::tempdir().expect("temp dir");
    let store = GrantStore::load(state.path()).expect("load");
    store.add(grant("a1", Scope::Always, "uid:0", "")).expect("add");
    store.add(grant("a2", Scope::Always, "uid:1000", "")).expect("add");
    assert_eq!(store.remove("a1").expect("remove").id, "a1");
    assert!(matches!(store.remove("a1"), Err(GrantError::NotFound(id)) if id == "a1"));
    let reloaded = GrantStore::load(state.path()).expect("reload");
    let ids: Vec<String> = reloaded.list().into_iter().map(|grant| grant.id).collect();
    assert_eq!(ids, ["a2"]);
}

#[test]
fn corrupt_file_is_an_error_that_names_it() {
    let state = tempfile::tempdir().expect("temp dir");
    let path = state.path().join(FILE_NAME);
    std::fs::write(&path, b"{\"version\": 1, \"grants\": [").expect("write");
    let error = GrantStore::load(state.path()).err().expect("a corrupt file fails");
    let message = error.to_string();
    assert!(matches!(error, GrantError::Invalid { .. }), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("move it aside"), "{message}");
}

#[test]
fn invalid_grants_are_rejected() {
    let cases = [
        (r#"{"version": 2, "grants": []}"#, "version 2 is not supported"),
        (
            r#"{"version": 1, "grants": [{"id": "x", "scope": "session", "principal": "uid:0", "session": "s",
                "source": "a", "target": "b", "tool": "t", "approver": "uid:0", "request": "r", "created_at_ms": 1}]}"#,
            "only \"always\" grants are stored",
        ),
        (
            r#"{"version": 1, "grants": [{"id": "x", "scope": "always", "principal": "",
                "source": "a", "target": "b", "tool": "t", "approver": "uid:0", "request": "r", "created_at_ms": 1}]}"#,
            "grants[0].principal is empty",
        ),
        (r#"{"version": 1, "grants": [], "extra": true}"#, "unknown field `extra`"),
    ];
    for (text, expected) in cases {
        let error = parse_file(text.as_bytes()).expect_err(text);
        assert!(error.contains(expected), "{text}: {error}");
    }
    let twice = r#"{"id": "x", "scope": "always", "principal": "uid:0", "source": "a", "target": "b",
        "tool": "t", "approver": "uid:0", "request": "r", "created_at_ms": 1}"#;
    let text = format!(r#"{{"version": 1, "grants": [{twice}, {twice}]}}"#);
    let error = parse_file(text.as_bytes()).expect_err("duplicate ids");
    assert!(error.contains("grants[1].id \"x\" is used twice"), "{error}");
}

#[test]
fn failed_write_keeps_the_grant_out() {
    let state = tempfile::tempdir().expect("temp dir");
    let store = GrantStore::load(state.path()).expect("load");
    // A folder at the file's path makes the rename fail.
    std::fs::create_dir(state.path().join(FILE_NAME)).expect("block the file");
    let error = store.add(grant("a1", Scope::Always, "uid:0", "")).expect_err("write fails");
    assert!(matches!(error, GrantError::Write { .. }), "{error}");
    assert!(store.list().is_empty());
}
