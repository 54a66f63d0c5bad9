//! Mediation of data flows between apps: sessions with the provenance of their results, the flow
//! guard's rules, the broker's decisions, the stored grants and the pending approval requests.

pub mod approvals;
pub mod broker;
pub mod decision;
pub mod grants;
pub mod guard;
pub mod sessions;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

pub use broker::{AllowRule, Broker, Decision};
pub use guard::{FlowRules, Rule};
pub use sessions::Sessions;

/// The default of `[flow] approval_timeout`.
pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(60);

/// The flow settings of hub.toml's `[flow]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowConfig {
    pub rules: FlowRules,
    pub allow: Vec<AllowRule>,
    /// How long a call waits for a live approver before it is denied.
    pub approval_timeout: Duration,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            rules: FlowRules::default(),
            allow: Vec::new(),
            approval_timeout: DEFAULT_APPROVAL_TIMEOUT,
        }
    }
}

/// A notice that the hub sends a query while it decides the flows of one of its transfers or calls.
#[derive(Debug)]
pub enum FlowNotice {
    /// The flow waits for a live approver. Sent before the wait begins.
    Pending(Arc<approvals::Request>),
    /// The flow was decided.
    Decided(FlowReport),
}

/// The channel of [`FlowNotice`]s.
pub type FlowNotices = mpsc::UnboundedSender<FlowNotice>;

/// One decided flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowReport {
    pub source: String,
    pub target: String,
    pub tool: String,
    pub rule: Rule,
    /// The arguments the decision was about.
    pub arguments: String,
    /// The argument fields that carry the source's data, as JSON Pointers.
    pub fields: Vec<String>,
    pub allowed: bool,
    /// The decider: a grant, a rule, an approver, "no approver" or "timed out".
    pub by: String,
    /// The reason for the denial and the next step for the caller. Empty when the flow was allowed.
    pub reason: String,
    /// Whether the denied data was emptied from its fields and the call went ahead without it.
    pub withheld: bool,
}

/// Who makes a call, and in which session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// "uid:N" from SO_PEERCRED on the Unix socket, or "token" for a TCP client that presented the
    /// bearer token.
    pub principal: String,
    /// The agent's session id. Empty means a session of its own for one call.
    pub session: String,
}

/// The principal that may decide every request and manage every grant.
pub const ROOT_PRINCIPAL: &str = "uid:0";

/// Reports whether `approver` may decide the requests of `principal`, and list or revoke its
/// grants: root may act for everyone, any other principal only for itself.
pub fn may_act_for(approver: &str, principal: &str) -> bool {
    approver == ROOT_PRINCIPAL || approver == principal
}
