//! Mediation of data flows between apps: sessions with the provenance of their results, the flow
//! guard's rules and the broker's decisions.

pub mod broker;
pub mod guard;
pub mod sessions;

pub use broker::{AllowRule, Decision};
pub use guard::{FlowRules, Rule};
pub use sessions::Sessions;

/// The flow settings of hub.toml's `[flow]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowConfig {
    pub rules: FlowRules,
    pub allow: Vec<AllowRule>,
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
