//! The hub's request errors, and the one place that maps them to gRPC status codes.

use tonic::{Code, Status};

use crate::flow::approvals::ApprovalError;
use crate::flow::broker::BrokerError;
use crate::flow::grants::GrantError;
use crate::catalog::CatalogError;

/// A flow into a call that was denied. `decision` is the reason for the denial and the next step
/// for the caller.
#[derive(Debug, thiserror::Error)]
#[error("call to {target}/{tool} denied: data from app {source_app:?} may flow into it because {reason}, and {decision}")]
pub struct FlowDenial {
    pub source_app: String,
    pub target: String,
    pub tool: String,
    pub reason: String,
    pub decision: String,
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("app {0:?} not found; list the registered apps with `bulkhead apps list`")]
    AppNotFound(String),
    #[error("tool {tool:?} not found in app {app:?}; list its tools with `bulkhead tools {app}`")]
    ToolNotFound { app: String, tool: String },
    #[error("invalid arguments for {app}/{tool}: {reason}")]
    InvalidArguments { app: String, tool: String, reason: String },
    #[error("invalid manifest {origin}: {reason}")]
    InvalidManifest { origin: String, reason: String },
    #[error("app {0:?} is already registered; pass --replace to replace it")]
    AppExists(String),
    #[error("app {name:?} comes from {path}; delete that file and run `bulkhead reload` to remove it")]
    AppFromConfig { name: String, path: String },
    #[error("app {app:?} could not start: {reason}")]
    SpokeStart { app: String, reason: String },
    #[error("app {app:?} is unavailable: {reason}")]
    SpokeUnavailable { app: String, reason: String },
    #[error("app {app:?} did not return from {tool} within {timeout}; raise [limits] call_timeout in its manifest if the tool is slow")]
    CallTimeout { app: String, tool: String, timeout: String },
    #[error("app {app:?} failed on {tool}: {reason}")]
    CallFailed { app: String, tool: String, reason: String },
    #[error("the hub is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    FlowDenied(Box<FlowDenial>),
    #[error("cannot name the caller: {0}; the hub rejects callers it cannot name, so connect over its Unix socket or TCP")]
    UnknownPeer(&'static str),
    #[error("{0}; the hub rejects calls it cannot record")]
    Audit(#[from] crate::audit::AuditError),
    #[error("cannot store the registry in {path}: {source}")]
    Store { path: String, source: std::io::Error },
    #[error(transparent)]
    Broker(#[from] crate::flow::broker::BrokerError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    #[error("{0}")]
    CannotPlan(String),
    #[error("the planner's output was rejected twice: {0}; rephrase the query or check the model in [llm] of hub.toml")]
    PlanRejected(String),
    #[error("the query's LLM backend failed: {0}")]
    Llm(String),
    #[error("the query reached its limit of {limit} {what}; raise [llm] {key} in hub.toml if it needs more")]
    QueryLimit { what: &'static str, limit: u32, key: &'static str },
}

impl HubError {
    /// Returns the gRPC status code the error maps to.
    pub fn code(&self) -> Code {
        match self {
            HubError::AppNotFound(_) | HubError::ToolNotFound { .. } => Code::NotFound,
            HubError::InvalidArguments { .. }
            | HubError::InvalidManifest { .. }
            | HubError::InvalidQuery(_)
            | HubError::CannotPlan(_) => Code::InvalidArgument,
            HubError::PlanRejected(_) => Code::FailedPrecondition,
            HubError::Llm(_) => Code::Unavailable,
            HubError::QueryLimit { .. } => Code::ResourceExhausted,
            HubError::AppExists(_) => Code::AlreadyExists,
            HubError::AppFromConfig { .. } => Code::FailedPrecondition,
            HubError::SpokeStart { .. } | HubError::SpokeUnavailable { .. } | HubError::ShuttingDown => {
                Code::Unavailable
            }
            HubError::CallTimeout { .. } => Code::DeadlineExceeded,
            HubError::CallFailed { .. } => Code::Unknown,
            HubError::Store { .. } => Code::Internal,
            HubError::Audit(_) => Code::Unavailable,
            HubError::FlowDenied(_) | HubError::UnknownPeer(_) => Code::PermissionDenied,
            HubError::Broker(error) => broker_code(error),
            HubError::Catalog(error) => match error {
                CatalogError::ToolNotFound { .. } => Code::NotFound,
                CatalogError::InvalidArguments { .. } => Code::InvalidArgument,
                CatalogError::Quarantined { .. }
                | CatalogError::NotPinned { .. }
                | CatalogError::NotQuarantined { .. }
                | CatalogError::StaleApproval { .. }
                | CatalogError::UnusableSchema { .. }
                | CatalogError::InvalidCatalog { .. } => Code::FailedPrecondition,
                CatalogError::Store { .. } | CatalogError::Corrupt { .. } => Code::Internal,
                CatalogError::Audit(_) => Code::Unavailable,
            },
        }
    }
}

impl From<HubError> for Status {
    fn from(error: HubError) -> Status {
        Status::new(error.code(), error.to_string())
    }
}

fn broker_code(error: &BrokerError) -> Code {
    match error {
        BrokerError::Approval(ApprovalError::NotFound(_)) | BrokerError::Grant(GrantError::NotFound(_)) => {
            Code::NotFound
        }
        BrokerError::Approval(ApprovalError::NotApprover { .. }) => Code::PermissionDenied,
        BrokerError::Approval(ApprovalError::AlwaysForDestructive { .. } | ApprovalError::NoSession(_)) => {
            Code::FailedPrecondition
        }
        BrokerError::Approval(ApprovalError::NoDecision) => Code::InvalidArgument,
        BrokerError::Approval(ApprovalError::Failed(_))
        | BrokerError::Grant(GrantError::Read { .. } | GrantError::Invalid { .. } | GrantError::Write { .. })
        | BrokerError::Audit(_) => Code::Unavailable,
        BrokerError::Task(_) => Code::Internal,
    }
}
