//! The bulkhead hub.
//!
//! - `config`, `manifest`, `units`: the hub's TOML config and app manifests, parsed and validated.
//! - `registry`: the registered apps and the host uid each runs as.
//! - `supervisor`: spoke lifecycles: start on first call, idle stop, crash backoff, shutdown.
//! - `hub`, `service`, `server`, `daemon`: the shared state, the gRPC services, the listeners and the
//!   daemon's signal handling.
//! - `catalog`: pinned tool catalogs, quarantine on change, and argument validation.
//! - `audit`: the hash-chained audit log of calls, registrations and spoke lifecycles.
//! - `flow`: sessions, the flow guard's rules, the broker's decisions on cross-app flows, the
//!   pending approval requests and the stored grants.
//! - `app_logs`, `logs_service`: the apps' captured stderr and the LogService that streams it.
//! - `approvals_service`: the ApprovalService that approvers use to decide flows and manage grants.
//! - `query`: natural-language queries: the planner, parallel steps, per-app LLM contexts, history.
//! - `sampling`: the apps' MCP sampling requests, which spokes send on their ask channel and the
//!   hub completes with the `[llm]` backend, within a per-app rate limit.
//! - `notify`, `reconcile`: sd_notify messages, and the removal of spokes left by a killed hub.
//! - `error`: the request errors and their one mapping to gRPC status codes.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod app_logs;
pub mod approvals_service;
pub mod audit;
pub mod catalog;
pub mod config;
pub mod daemon;
pub mod egress;
pub mod error;
pub mod files;
pub mod flow;
pub mod hub;
pub mod logs_service;
pub mod manifest;
pub mod notify;
pub mod query;
pub mod reconcile;
pub mod registry;
pub mod sampling;
pub mod server;
pub mod service;
pub mod supervisor;
pub mod units;
