use std::path::Path;

use super::*;

fn descriptor(name: &str, description: &str) -> ToolDescriptor {
    ToolDescriptor {
        name: name.into(),
        description: description.into(),
        input_schema_json: r#"{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}"#.into(),
    }
}

fn open(state: &Path) -> Arc<Catalogs> {
    let audit = AuditLog::open(state, false).expect("audit log");
    Catalogs::load(state, audit).expect("catalogs")
}

fn audit_kinds(state: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(state.join(crate::audit::FILE_NAME)).expect("audit log");
    text.lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).expect("record");
            record["kind"].as_str().expect("kind").to_string()
        })
        .collect()
}

#[tokio::test]
async fn first_start_pins_and_same_catalog_passes() {
    let state = tempfile::tempdir().expect("temp dir");
    let catalogs = open(state.path());
    assert!(matches!(catalogs.check_call("echo", "say", "{}"), Err(CatalogError::NotPinned { .. })));

    catalogs.observe("echo", &[descriptor("say", "Says it.")], Trigger::Start).await.expect("pin");
    catalogs.observe("echo", &[descriptor("say", "Says it.")], Trigger::Start).await.expect("same");

    assert_eq!(catalogs.check_call("echo", "say", r#"{"text": "hi"}"#).ok(), Some(()));
    let (sha256, quarantined) = catalogs.status("echo").expect("status");
    assert_eq!(sha256.len(), 64);
    assert!(!quarantined);
    assert_eq!(audit_kinds(state.path()), ["catalog_pin"]);
}

#[tokio::test]
async fn changed_catalog_quarantines_until_approved() {
    let state = tempfile::tempdir().expect("temp dir");
    let catalogs = open(state.path());
    catalogs.observe("echo", &[descriptor("say", "Says it.")], Trigger::Start).await.expect("pin");
    catalogs.observe("echo", &[descriptor("say", "Says it louder.")], Trigger::ListChanged).await.expect("change");

    let error = catalogs.check_call("echo", "say", r#"{"text": "hi"}"#).expect_err("quarantined");
    assert!(matches!(error, CatalogError::Quarantined { .. }), "{error}");
    assert!(error.to_string().contains("bulkhead apps diff echo"), "{error}");
    assert!(error.to_string().contains("bulkhead apps approve echo"), "{error}");
    let tools = catalogs.pinned_tools("echo").expect("pinned");
    assert_eq!(tools[0].description, "Says it.");

    let report = catalogs.diff("echo").expect("diff");
    assert_eq!(report.quarantine.as_ref().map(|q| q.trigger), Some(Trigger::ListChanged));
    assert_eq!(report.diff.changed.len(), 1);
    assert_eq!(report.diff.changed[0].description_diff, "- Says it.\n+ Says it louder.\n");

    let offered = report.quarantine.expect("quarantine").offered.sha256;
    let stale = catalogs.approve("echo", Some("0000")).await.expect_err("stale");
    assert!(matches!(stale, CatalogError::StaleApproval { .. }), "{stale}");
    let pinned = catalogs.approve("echo", Some(&offered)).await.expect("approve");
    assert_eq!(pinned.sha256, offered);
    assert_eq!(catalogs.check_call("echo", "say", r#"{"text": "hi"}"#).ok(), Some(()));
    assert_eq!(catalogs.pinned_tools("echo").expect("pinned")[0].description, "Says it louder.");
    assert_eq!(audit_kinds(state.path()), ["catalog_pin", "catalog_quarantine", "catalog_approve"]);
}

#[tokio::test]
async fn quarantine_survives_a_reload() {
    let state = tempfile::tempdir().expect("temp dir");
    {
        let catalogs = open(state.path());
        catalogs.observe("echo", &[descriptor("say", "Says it.")], Trigger::Start).await.expect("pin");
        catalogs.observe("echo", &[descriptor("shout", "Shouts.")], Trigger::Start).await.expect("change");
    }
    let catalogs = open(state.path());
    assert!(matches!(catalogs.check_call("echo", "say", "{}"), Err(CatalogError::Quarantined { .. })));
    let report = catalogs.diff("echo").expect("diff");
    assert_eq!(report.diff.added.iter().map(|tool| tool.name.as_str()).collect::<Vec<_>>(), ["shout"]);
    assert_eq!(report.diff.removed.iter().map(|tool| tool.name.as_str()).collect::<Vec<_>>(), ["say"]);
}

#[tokio::test]
async fn reverting_app_stays_quarantined() {
    let state = tempfile::tempdir().expect("temp dir");
    let catalogs = open(state.path());
    catalogs.observe("echo", &[descriptor("say", "Says it.")], Trigger::Start).await.expect("pin");
    catalogs.observe("echo", &[descriptor("say", "Changed.")], Trigger::Start).await.expect("change");
    catalogs.observe("echo", &[descriptor("say", "Says it.")], Trigger::Start).await.expect("revert");

    assert!(matches!(catalogs.check_call("echo", "say", "{}"), Err(CatalogError::Quarantined { .. })));
    assert!(catalogs.diff("echo").expect("diff").diff.is_empty());
    catalogs.approve("echo", None).await.expect("approve");
    assert!(catalogs.check_call("echo", "say", r#"{"text": "hi"}"#).is_ok());
}

#[tokio::test]
async fn approve_without_quarantine_is_rejected() {
    let state = tempfile::tempdir().expect("temp dir");
    let catalogs = open(state.path());
    assert!(matches!(catalogs.approve("echo", None).await, Err(CatalogError::NotPinned { .. })));
    catalogs.observe("echo", &[descriptor("say", "Says it.")], Trigger::Start).await.expect("pin");
    assert!(matches!(catalogs.approve("echo", None).await, Err(CatalogError::NotQuarantined { .. })));
}

#[tokio::test]
async fn calls_are_checked_against_the_pinned_schema() {
    let state = tempfile::tempdir().expect("temp dir");
    let catalogs = open(state.path());
    catalogs.observe("echo", &[descriptor("say", "Says it.")], Trigger::Start).await.expect("pin");

    let wrong_type = catalogs.check_call("echo", "say", r#"{"text": 5}"#).expect_err("wrong type");
    assert!(wrong_type.to_string().contains(r#"argument /text: 5 is not of type "string""#), "{wrong_type}");
    let missing = catalogs.check_call("echo", "say", "{}").expect_err("missing");
    assert!(missing.to_string().contains("argument /text: "), "{missing}");
    let unknown = catalogs.check_call("echo", "shout", "{}").expect_err("unknown");
    assert!(matches!(unknown, CatalogError::ToolNotFound { .. }), "{unknown}");
}

#[tokio::test]
async fn remove_forgets_the_pin() {
    let state = tempfile::tempdir().expect("temp dir");
    let catalogs = open(state.path());
    catalogs.observe("echo", &[descriptor("say", "Says it.")], Trigger::Start).await.expect("pin");
    catalogs.remove("echo").await.expect("remove");
    assert!(catalogs.status("echo").is_none());
    assert!(open(state.path()).status("echo").is_none());

    // An app registered again under the name is pinned afresh, not quarantined.
    catalogs.observe("echo", &[descriptor("say", "Another app.")], Trigger::Start).await.expect("pin again");
    assert_eq!(catalogs.status("echo").map(|(_, quarantined)| quarantined), Some(false));
}
