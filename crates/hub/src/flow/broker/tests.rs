use std::time::Duration;

use tokio::sync::mpsc;

use super::*;
use crate::flow::approvals::Event;
use crate::flow::guard::Rule;

struct Setup {
    state: tempfile::TempDir,
    broker: Broker,
}

fn setup(timeout: Duration) -> Setup {
    let state = tempfile::tempdir().expect("temp dir");
    let audit = AuditLog::open(state.path(), false).expect("audit log");
    let grants = GrantStore::load(state.path()).expect("grants");
    let config = FlowConfig { approval_timeout: timeout, ..FlowConfig::default() };
    let broker = Broker::new(&config, grants, audit);
    Setup { state, broker }
}

fn caller(principal: &str, session: &str) -> Caller {
    Caller { principal: principal.into(), session: session.into() }
}

fn flow() -> Flow {
    Flow { source: "repo_private".into(), rule: Rule::Verbatim }
}

fn flow_call<'a>(caller: &'a Caller, flow: &'a Flow, destructive: bool) -> FlowCall<'a> {
    FlowCall {
        caller,
        call: 7,
        flow,
        target: "repo_public",
        tool: "create_pr",
        destructive,
        arguments_json: "{\"body\":  \"a\n\n b\"}",
        fields: &[],
        notices: None,
    }
}

fn audit_kinds(setup: &Setup) -> Vec<String> {
    let text = std::fs::read_to_string(setup.state.path().join("audit.log")).expect("audit log");
    text.lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).expect("record");
            record["kind"].as_str().expect("kind").to_string()
        })
        .collect()
}

/// Waits for the next request on an approver's stream and returns it.
async fn next_request(events: &mut mpsc::Receiver<Event>) -> Arc<Request> {
    match events.recv().await {
        Some(Event::Requested(request)) => request,
        other => panic!("expected a request, got {other:?}"),
    }
}

/// Runs one call while an approver decides its request with `choice`, and returns the call's
/// decision and the approver's result.
async fn decide_with(
    setup: &Setup,
    events: &mut mpsc::Receiver<Event>,
    call: FlowCall<'_>,
    approver: &str,
    choice: Choice,
) -> (Decision, Option<Grant>) {
    let approve = async {
        let request = next_request(events).await;
        setup.broker.settle(approver, &request.id, choice).await.expect("settle")
    };
    let (decision, grant) = tokio::join!(setup.broker.decide(call), approve);
    (decision.expect("decide"), grant)
}

#[tokio::test]
async fn no_approver_denies_at_once() {
    let setup = setup(Duration::from_secs(60));
    let (caller, flow) = (caller("uid:0", "s"), flow());
    let decision = setup.broker.decide(flow_call(&caller, &flow, true)).await.expect("decide");
    assert_eq!(decision, Decision::DeniedNoApprover);
    assert!(!audit_kinds(&setup).contains(&"approval_request".to_string()));
}

#[tokio::test]
async fn approver_of_another_uid_does_not_count() {
    let setup = setup(Duration::from_secs(60));
    let (_pending, _events) = setup.broker.approvals().watch("uid:1000");
    let (caller, flow) = (caller("uid:0", "s"), flow());
    let decision = setup.broker.decide(flow_call(&caller, &flow, true)).await.expect("decide");
    assert_eq!(decision, Decision::DeniedNoApprover);
}

#[tokio::test]
async fn once_allows_one_call_only() {
    let setup = setup(Duration::from_secs(60));
    let (_pending, mut events) = setup.broker.approvals().watch("uid:0");
    let (caller, flow) = (caller("uid:0", "s"), flow());

    let (decision, grant) = decide_with(&setup, &mut events, flow_call(&caller, &flow, true), "uid:0", Choice::Once).await;
    assert!(decision.allowed(), "{decision:?}");
    assert_eq!(decision.by(), "approver uid:0 (once)");
    assert_eq!(grant, None);
    match events.recv().await {
        Some(Event::Settled { outcome, .. }) => assert_eq!(outcome, "approved once by uid:0"),
        other => panic!("expected a settled event, got {other:?}"),
    }

    let (decision, _) = decide_with(&setup, &mut events, flow_call(&caller, &flow, true), "uid:0", Choice::Deny).await;
    assert!(matches!(decision, Decision::DeniedByApprover { ref approver, .. } if approver == "uid:0"), "{decision:?}");
    let kinds = audit_kinds(&setup);
    assert_eq!(
        kinds,
        ["approval_request", "approval_decision", "approval_request", "approval_decision"],
        "the broker records requests and decisions, and the hub records the flow decisions"
    );
    assert_eq!(setup.broker.approvals().pending(), 0);
}

#[tokio::test]
async fn request_carries_collapsed_arguments() {
    let setup = setup(Duration::from_secs(60));
    let (_pending, mut events) = setup.broker.approvals().watch("uid:0");
    let (caller, flow) = (caller("uid:0", "s"), flow());
    let approve = async {
        let request = next_request(&mut events).await;
        assert_eq!(request.arguments, "{\"body\": \"a\n\n b\"}".replace("\n\n ", " "));
        assert_eq!(request.principal, "uid:0");
        assert_eq!(request.session, "s");
        assert_eq!((request.source.as_str(), request.target.as_str(), request.tool.as_str()), ("repo_private", "repo_public", "create_pr"));
        assert_eq!(request.rule, Rule::Verbatim);
        assert!(request.destructive);
        assert!(request.expires_at_ms >= request.requested_at_ms + 60_000);
        setup.broker.settle("uid:0", &request.id, Choice::Deny).await.expect("settle")
    };
    let (decision, _) = tokio::join!(setup.broker.decide(flow_call(&caller, &flow, true)), approve);
    assert!(!decision.expect("decide").allowed());
}

#[tokio::test]
async fn session_grant_applies_to_its_session_only() {
    let setup = setup(Duration::from_secs(60));
    let (_pending, mut events) = setup.broker.approvals().watch("uid:0");
    let (first, flow) = (caller("uid:0", "s1"), flow());
    let (decision, grant) = decide_with(&setup, &mut events, flow_call(&first, &flow, true), "uid:0", Choice::Session).await;
    assert!(decision.allowed());
    let grant = grant.expect("a session grant");
    assert_eq!((grant.scope, grant.session.as_str()), (Scope::Session, "s1"));
    drop(events);

    let again = setup.broker.decide(flow_call(&first, &flow, true)).await.expect("decide");
    assert_eq!(again, Decision::AllowedByGrant { grant: grant.id.clone(), scope: Scope::Session });
    let other = caller("uid:0", "s2");
    let denied = setup.broker.decide(flow_call(&other, &flow, true)).await.expect("decide");
    assert_eq!(denied, Decision::DeniedNoApprover);
    assert!(audit_kinds(&setup).contains(&"grant".to_string()));
}

#[tokio::test]
async fn session_choice_needs_a_session() {
    let setup = setup(Duration::from_secs(60));
    let (_pending, mut events) = setup.broker.approvals().watch("uid:0");
    let (caller, flow) = (caller("uid:0", ""), flow());
    let approve = async {
        let request = next_request(&mut events).await;
        let error = setup.broker.settle("uid:0", &request.id, Choice::Session).await.expect_err("no session");
        assert!(matches!(error, BrokerError::Approval(ApprovalError::NoSession(_))), "{error}");
        setup.broker.settle("uid:0", &request.id, Choice::Once).await.expect("settle once")
    };
    let (decision, _) = tokio::join!(setup.broker.decide(flow_call(&caller, &flow, false)), approve);
    assert!(decision.expect("decide").allowed());
}

#[tokio::test]
async fn always_grant_is_stored_for_its_principal_only() {
    let setup = setup(Duration::from_secs(60));
    let (_pending, mut events) = setup.broker.approvals().watch("uid:0");
    let (root, flow) = (caller("uid:0", "s1"), flow());
    let (_, grant) = decide_with(&setup, &mut events, flow_call(&root, &flow, false), "uid:0", Choice::Always).await;
    let grant = grant.expect("an always grant");
    drop(events);

    let reloaded = GrantStore::load(setup.state.path()).expect("reload");
    assert_eq!(reloaded.list(), std::slice::from_ref(&grant));
    let other_session = caller("uid:0", "s9");
    let allowed = setup.broker.decide(flow_call(&other_session, &flow, false)).await.expect("decide");
    assert_eq!(allowed, Decision::AllowedByGrant { grant: grant.id.clone(), scope: Scope::Always });
    let nobody = caller("uid:65534", "s1");
    let denied = setup.broker.decide(flow_call(&nobody, &flow, false)).await.expect("decide");
    assert_eq!(denied, Decision::DeniedNoApprover);
    assert!(setup.broker.grants("uid:65534").is_empty());
    assert_eq!(setup.broker.grants("uid:0").len(), 1);
}

#[tokio::test]
async fn always_is_rejected_for_destructive_tools() {
    let setup = setup(Duration::from_secs(60));
    let (_pending, mut events) = setup.broker.approvals().watch("uid:0");
    let (caller, flow) = (caller("uid:0", "s"), flow());
    let approve = async {
        let request = next_request(&mut events).await;
        let error = setup.broker.settle("uid:0", &request.id, Choice::Always).await.expect_err("destructive");
        let message = error.to_string();
        assert!(message.contains("destructive"), "{message}");
        assert!(message.contains("--once or --session"), "{message}");
        assert_eq!(setup.broker.approvals().pending(), 1, "the request stays pending");
        setup.broker.settle("uid:0", &request.id, Choice::Deny).await.expect("deny")
    };
    let (decision, _) = tokio::join!(setup.broker.decide(flow_call(&caller, &flow, true)), approve);
    assert!(!decision.expect("decide").allowed());
    assert!(GrantStore::load(setup.state.path()).expect("reload").list().is_empty());
}

#[tokio::test]
async fn only_root_or_the_caller_may_decide() {
    let setup = setup(Duration::from_secs(60));
    let (_pending, mut events) = setup.broker.approvals().watch("uid:0");
    let (caller, flow) = (caller("uid:1000", "s"), flow());
    let approve = async {
        let request = next_request(&mut events).await;
        let error = setup.broker.settle("uid:65534", &request.id, Choice::Once).await.expect_err("other uid");
        assert!(matches!(error, BrokerError::Approval(ApprovalError::NotApprover { .. })), "{error}");
        setup.broker.settle("uid:1000", &request.id, Choice::Once).await.expect("own uid")
    };
    let (decision, _) = tokio::join!(setup.broker.decide(flow_call(&caller, &flow, true)), approve);
    assert_eq!(decision.expect("decide").by(), "approver uid:1000 (once)");
}

#[tokio::test]
async fn unanswered_request_times_out() {
    let setup = setup(Duration::from_millis(100));
    let (_pending, mut events) = setup.broker.approvals().watch("uid:0");
    let (caller, flow) = (caller("uid:0", "s"), flow());
    let decision = setup.broker.decide(flow_call(&caller, &flow, true)).await.expect("decide");
    assert!(matches!(decision, Decision::DeniedTimeout { .. }), "{decision:?}");
    let request = next_request(&mut events).await;
    match events.recv().await {
        Some(Event::Settled { id, outcome }) => assert_eq!((id, outcome.as_str()), (request.id.clone(), "timed out")),
        other => panic!("expected a settled event, got {other:?}"),
    }
    let late = setup.broker.settle("uid:0", &request.id, Choice::Once).await.expect_err("too late");
    assert!(matches!(late, BrokerError::Approval(ApprovalError::NotFound(_))), "{late}");
    assert_eq!(audit_kinds(&setup), ["approval_request", "approval_timeout"]);
}

#[tokio::test]
async fn ended_call_withdraws_its_request() {
    let setup = setup(Duration::from_secs(60));
    let (_pending, mut events) = setup.broker.approvals().watch("uid:0");
    let (caller, flow) = (caller("uid:0", "s"), flow());
    let cut = tokio::time::timeout(Duration::from_millis(100), setup.broker.decide(flow_call(&caller, &flow, true))).await;
    assert!(cut.is_err(), "the call waits for a decision");
    assert_eq!(setup.broker.approvals().pending(), 0);
    next_request(&mut events).await;
    match events.recv().await {
        Some(Event::Settled { outcome, .. }) => assert!(outcome.starts_with("cancelled"), "{outcome}"),
        other => panic!("expected a settled event, got {other:?}"),
    }
    assert_eq!(audit_kinds(&setup), ["approval_request", "approval_cancelled"]);
}

#[tokio::test]
async fn late_watcher_gets_pending_requests_first() {
    let setup = setup(Duration::from_secs(60));
    let (_first, mut events) = setup.broker.approvals().watch("uid:0");
    let (caller, flow) = (caller("uid:0", "s"), flow());
    let approve = async {
        let request = next_request(&mut events).await;
        let (pending, _late) = setup.broker.approvals().watch("uid:0");
        assert_eq!(pending, std::slice::from_ref(&request));
        let (hidden, _other) = setup.broker.approvals().watch("uid:1000");
        assert!(hidden.is_empty(), "a non-root approver sees only its own requests");
        setup.broker.settle("uid:0", &request.id, Choice::Once).await.expect("settle")
    };
    let (decision, _) = tokio::join!(setup.broker.decide(flow_call(&caller, &flow, true)), approve);
    assert!(decision.expect("decide").allowed());
}

#[tokio::test]
async fn revoke_checks_the_principal_and_records_it() {
    let setup = setup(Duration::from_secs(60));
    let (_pending, mut events) = setup.broker.approvals().watch("uid:0");
    let (root, flow) = (caller("uid:0", "s"), flow());
    let (_, grant) = decide_with(&setup, &mut events, flow_call(&root, &flow, false), "uid:0", Choice::Always).await;
    let grant = grant.expect("grant");

    let error = setup.broker.revoke("uid:65534", &grant.id).await.expect_err("other uid");
    assert!(matches!(error, BrokerError::Approval(ApprovalError::NotApprover { .. })), "{error}");
    let removed = setup.broker.revoke("uid:0", &grant.id).await.expect("revoke");
    assert_eq!(removed.id, grant.id);
    let missing = setup.broker.revoke("uid:0", &grant.id).await.expect_err("gone");
    assert!(matches!(missing, BrokerError::Grant(GrantError::NotFound(_))), "{missing}");
    assert!(GrantStore::load(setup.state.path()).expect("reload").list().is_empty());
    assert_eq!(audit_kinds(&setup).last().map(String::as_str), Some("revoke"));
}

#[tokio::test]
async fn grant_comes_before_static_rules() {
    let state = tempfile::tempdir().expect("temp dir");
    let audit = AuditLog::open(state.path(), false).expect("audit log");
    let grants = GrantStore::load(state.path()).expect("grants");
    grants
        .add(Grant {
            id: "g1".into(),
            scope: Scope::Always,
            principal: "uid:0".into(),
            session: String::new(),
            source: "repo_private".into(),
            target: "repo_public".into(),
            tool: "create_pr".into(),
            approver: "uid:0".into(),
            request: "r1".into(),
            created_at_ms: 1,
        })
        .expect("add");
    let config = FlowConfig {
        allow: vec![AllowRule { target: "repo_public".into(), ..AllowRule::default() }],
        ..FlowConfig::default()
    };
    let broker = Broker::new(&config, grants, audit);
    let (root, nobody, flow) = (caller("uid:0", ""), caller("uid:65534", ""), flow());
    let by_grant = broker.decide(flow_call(&root, &flow, true)).await.expect("decide");
    assert_eq!(by_grant.by(), "grant g1 (always)");
    let by_rule = broker.decide(flow_call(&nobody, &flow, true)).await.expect("decide");
    assert_eq!(by_rule, Decision::AllowedByRule(0));
}
