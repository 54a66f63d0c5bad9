//! Mediation of data flows between apps: sessions with the provenance of their results, the flow
//! guard's rules, the broker's decisions, the stored grants and the pending approval requests.

pub mod approvals;
pub mod broker;
pub mod decision;
pub mod grants;
pub mod guard;
pub mod sessions;

use std::time::Duration;

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
