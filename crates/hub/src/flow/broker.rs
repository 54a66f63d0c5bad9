//! The broker: decides whether a flow that the guard found may go ahead.
//!
//! Decisions come from, in this order: stored grants, the static `[[flow.allow]]` rules of
//! hub.toml, then a live approver. With no approver that may decide the request, or no decision
//! within `[flow] approval_timeout`, the flow is denied. Each approval request, decision, timeout,
//! grant and revocation is written durably to the audit log before it takes effect.

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::approvals::{Answer, ApprovalError, Approvals, Choice, Request};
use super::decision::matching_rule;
pub use super::decision::{AllowRule, Decision};
use super::grants::{now_ms, FlowKey, Grant, GrantError, GrantStore, Scope};
use super::guard::{collapse_whitespace, Flow};
use super::{may_act_for, Caller, FlowConfig, FlowNotice, FlowNotices};
use crate::audit::{fields, AuditError, AuditLog};

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    #[error(transparent)]
    Grant(#[from] GrantError),
    #[error("{0}; the hub rejects decisions it cannot record")]
    Audit(#[from] AuditError),
    #[error("the grant store task failed: {0}")]
    Task(String),
}

/// A call whose flow needs a decision.
#[derive(Debug, Clone, Copy)]
pub struct FlowCall<'a> {
    pub caller: &'a Caller,
    /// The `seq` of the call's `call` record in the audit log.
    pub call: u64,
    pub flow: &'a Flow,
    pub target: &'a str,
    pub tool: &'a str,
    pub destructive: bool,
    pub arguments_json: &'a str,
    /// The argument fields that carry the source's data, as JSON Pointers.
    pub fields: &'a [String],
    /// Told when the flow becomes a pending request, so that a query can report it.
    pub notices: Option<&'a FlowNotices>,
}

impl FlowCall<'_> {
    fn key(&self) -> FlowKey<'_> {
        FlowKey {
            principal: &self.caller.principal,
            session: &self.caller.session,
            source: &self.flow.source,
            target: self.target,
            tool: self.tool,
        }
    }
}

pub struct Broker {
    rules: Vec<AllowRule>,
    timeout: Duration,
    grants: Arc<GrantStore>,
    approvals: Arc<Approvals>,
    audit: Arc<AuditLog>,
}

impl Broker {
    pub fn new(config: &FlowConfig, grants: GrantStore, audit: Arc<AuditLog>) -> Broker {
        Broker {
            rules: config.allow.clone(),
            timeout: config.approval_timeout,
            grants: Arc::new(grants),
            approvals: Arc::new(Approvals::default()),
            audit,
        }
    }

    pub fn approvals(&self) -> &Arc<Approvals> {
        &self.approvals
    }

    /// Decides a flow: from a stored grant, a static rule or a live approver, in that order.
    pub async fn decide(&self, call: FlowCall<'_>) -> Result<Decision, BrokerError> {
        if let Some(grant) = self.grants.find(&call.key()) {
            return Ok(Decision::AllowedByGrant { grant: grant.id, scope: grant.scope });
        }
        let principal = &call.caller.principal;
        if let Some(index) = matching_rule(&self.rules, principal, call.flow, call.target, call.tool) {
            return Ok(Decision::AllowedByRule(index));
        }
        if !self.approvals.has_approver(principal) {
            return Ok(Decision::DeniedNoApprover);
        }
        self.ask(call).await
    }

    /// Sends the flow to the approvers as a request and waits for a decision, at most for the
    /// approval timeout.
    async fn ask(&self, call: FlowCall<'_>) -> Result<Decision, BrokerError> {
        let requested_at_ms = now_ms();
        let timeout_ms = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX);
        let request = Request {
            id: self.approvals.new_id(),
            call: call.call,
            principal: call.caller.principal.clone(),
            session: call.caller.session.clone(),
            source: call.flow.source.clone(),
            target: call.target.to_string(),
            tool: call.tool.to_string(),
            rule: call.flow.rule,
            reason: call.flow.rule.explain(&call.flow.source),
            arguments: collapse_whitespace(call.arguments_json),
            fields: call.fields.to_vec(),
            destructive: call.destructive,
            requested_at_ms,
            expires_at_ms: requested_at_ms.saturating_add(timeout_ms),
        };
        let id = request.id.clone();
        self.audit.record("approval_request", self.request_fields(&request, call.arguments_json)).await?;
        tracing::info!(request = %id, principal = %request.principal, source = %request.source,
            target = %request.target, tool = %request.tool, "approval requested");
        let (mut receiver, opened) = self.approvals.open(request);
        if let Some(notices) = call.notices {
            // A query that stopped listening still gets its decision.
            let _ = notices.send(FlowNotice::Pending(opened));
        }
        let _pending = PendingGuard { approvals: &self.approvals, audit: &self.audit, id: id.clone() };

        let answer = match tokio::time::timeout(self.timeout, &mut receiver).await {
            Ok(answer) => answer,
            Err(_elapsed) => match self.approvals.withdraw(&id) {
                Some(request) => {
                    let record = fields([("request", Value::from(id.as_str())), ("call", Value::from(call.call))]);
                    let recorded = self.audit.record("approval_timeout", record).await;
                    self.approvals.settle(&request, "timed out".to_string());
                    tracing::info!(request = %id, "approval request timed out");
                    recorded?;
                    return Ok(Decision::DeniedTimeout { request: id, timeout: self.timeout });
                }
                // An approver took the request just now, and its decision is being recorded.
                None => receiver.await,
            },
        };
        match answer {
            Ok(Answer::Decided { approver, choice: Choice::Deny, .. }) => {
                Ok(Decision::DeniedByApprover { request: id, approver })
            }
            Ok(Answer::Decided { approver, choice, .. }) => Ok(Decision::Approved { request: id, approver, choice }),
            Ok(Answer::Failed(reason)) => Err(ApprovalError::Failed(reason).into()),
            Err(_) => Err(ApprovalError::Failed("the request ended without a decision".to_string()).into()),
        }
    }

    /// Applies an approver's decision on the pending request `id`, and returns the grant it made,
    /// if any. The decision and the grant are recorded durably before the waiting call hears of
    /// them. When that fails, the call is denied and the error returned.
    pub async fn settle(&self, approver: &str, id: &str, choice: Choice) -> Result<Option<Grant>, BrokerError> {
        let (request, answer) = self.approvals.take(id, approver, |request| check_choice(request, choice))?;
        match self.apply(approver, &request, choice).await {
            Ok(grant) => {
                let outcome = match choice {
                    Choice::Deny => format!("denied by {approver}"),
                    other => format!("approved {} by {approver}", other.as_str()),
                };
                tracing::info!(request = %id, approver, decision = choice.as_str(), "approval request decided");
                let grant_id = grant.as_ref().map(|grant| grant.id.clone());
                // A call that ended meanwhile has dropped its receiver. The grant is kept all the same.
                let _ = answer.send(Answer::Decided { approver: approver.to_string(), choice, grant: grant_id });
                self.approvals.settle(&request, outcome);
                Ok(grant)
            }
            Err(error) => {
                tracing::error!(request = %id, approver, "cannot apply an approver's decision: {error}");
                let _ = answer.send(Answer::Failed(error.to_string()));
                self.approvals.settle(&request, format!("failed: {error}"));
                Err(error)
            }
        }
    }

    async fn apply(&self, approver: &str, request: &Request, choice: Choice) -> Result<Option<Grant>, BrokerError> {
        let record = fields([
            ("request", Value::from(request.id.as_str())),
            ("call", Value::from(request.call)),
            ("principal", Value::from(request.principal.as_str())),
            ("approver", Value::from(approver)),
            ("decision", Value::from(choice.as_str())),
        ]);
        self.audit.record("approval_decision", record).await?;
        let scope = match choice {
            Choice::Session => Scope::Session,
            Choice::Always => Scope::Always,
            Choice::Once | Choice::Deny => return Ok(None),
        };
        let grant = Grant {
            id: self.grants.new_id(),
            scope,
            principal: request.principal.clone(),
            session: if scope == Scope::Session { request.session.clone() } else { String::new() },
            source: request.source.clone(),
            target: request.target.clone(),
            tool: request.tool.clone(),
            approver: approver.to_string(),
            request: request.id.clone(),
            created_at_ms: now_ms(),
        };
        self.audit.record("grant", grant_fields(&grant, None)).await?;
        let grants = self.grants.clone();
        let stored = grant.clone();
        let added = tokio::task::spawn_blocking(move || grants.add(stored))
            .await
            .map_err(|error| BrokerError::Task(error.to_string()))?;
        if let Err(error) = added {
            let record = fields([("grant", Value::from(grant.id.as_str())), ("reason", Value::from(error.to_string()))]);
            self.audit.note("grant_failed", record).await;
            return Err(error.into());
        }
        Ok(Some(grant))
    }

    /// Returns the grants that `principal` may see: every grant for root, its own otherwise.
    pub fn grants(&self, principal: &str) -> Vec<Grant> {
        self.grants.list().into_iter().filter(|grant| may_act_for(principal, &grant.principal)).collect()
    }

    /// Revokes the grant `id` on behalf of `by`, after recording the revocation durably.
    pub async fn revoke(&self, by: &str, id: &str) -> Result<Grant, BrokerError> {
        let grant = self.grants.get(id).ok_or_else(|| GrantError::NotFound(id.to_string()))?;
        if !may_act_for(by, &grant.principal) {
            return Err(ApprovalError::NotApprover { approver: by.to_string(), principal: grant.principal }.into());
        }
        self.audit.record("revoke", grant_fields(&grant, Some(by))).await?;
        let grants = self.grants.clone();
        let owned = id.to_string();
        let removed = tokio::task::spawn_blocking(move || grants.remove(&owned))
            .await
            .map_err(|error| BrokerError::Task(error.to_string()))??;
        tracing::info!(grant = %id, by, "grant revoked");
        Ok(removed)
    }

    fn request_fields(&self, request: &Request, arguments_json: &str) -> serde_json::Map<String, Value> {
        fields([
            ("request", Value::from(request.id.as_str())),
            ("call", Value::from(request.call)),
            ("principal", Value::from(request.principal.as_str())),
            ("session", Value::from(request.session.as_str())),
            ("source", Value::from(request.source.as_str())),
            ("target", Value::from(request.target.as_str())),
            ("tool", Value::from(request.tool.as_str())),
            ("rule", Value::from(request.rule.as_str())),
            ("fields", Value::from(request.fields.clone())),
            ("arguments", self.audit.arguments(arguments_json)),
        ])
    }
}

/// Rejects a decision that cannot apply to `request`: "always" on a destructive tool, and a
/// session grant for a call without a session.
fn check_choice(request: &Request, choice: Choice) -> Result<(), ApprovalError> {
    match choice {
        Choice::Always if request.destructive => Err(ApprovalError::AlwaysForDestructive {
            id: request.id.clone(),
            target: request.target.clone(),
            tool: request.tool.clone(),
        }),
        Choice::Session if request.session.is_empty() => Err(ApprovalError::NoSession(request.id.clone())),
        _ => Ok(()),
    }
}

/// Builds the fields of a `grant` record, or of a `revoke` record when `revoked_by` is set.
fn grant_fields(grant: &Grant, revoked_by: Option<&str>) -> serde_json::Map<String, Value> {
    let mut record = fields([
        ("grant", Value::from(grant.id.as_str())),
        ("scope", Value::from(grant.scope.as_str())),
        ("principal", Value::from(grant.principal.as_str())),
        ("session", Value::from(grant.session.as_str())),
        ("source", Value::from(grant.source.as_str())),
        ("target", Value::from(grant.target.as_str())),
        ("tool", Value::from(grant.tool.as_str())),
        ("approver", Value::from(grant.approver.as_str())),
        ("request", Value::from(grant.request.as_str())),
    ]);
    if let Some(by) = revoked_by {
        record.insert("by".to_string(), Value::from(by));
    }
    record
}

/// A guard that withdraws the request of a call that ended before a decision, for example
/// because the agent's deadline passed, and sends a settled event to the approvers.
struct PendingGuard<'a> {
    approvals: &'a Approvals,
    audit: &'a AuditLog,
    id: String,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let Some(request) = self.approvals.withdraw(&self.id) else { return };
        // The withdrawal decides nothing, so the record need not be durable before it.
        if let Err(error) = self.audit.write("approval_cancelled", fields([("request", Value::from(self.id.as_str()))])) {
            tracing::error!(request = %self.id, "{error}");
        }
        self.approvals.settle(&request, "cancelled: the call ended before a decision".to_string());
        tracing::info!(request = %self.id, "approval request cancelled because its call ended");
    }
}
