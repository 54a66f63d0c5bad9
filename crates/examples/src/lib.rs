//! Small MCP stdio apps that the bulkhead demo and tests run as spokes: notes, calendar and mail.
//!
//! Each app keeps its data in one state directory. That is `BULKHEAD_STATE_DIR` when the variable
//! is set (for running an app outside the sandbox), else `/state`, the private writable directory
//! that the sandbox mounts for the app. The apps need no network and write nowhere else.

pub mod calendar;
pub mod hostile;
pub mod mail;
pub mod notes;
pub mod runtime;
pub mod store;
pub mod tool_result;
pub mod validate;

use std::path::PathBuf;

/// Environment variable that overrides the state directory.
pub const STATE_DIR_ENV: &str = "BULKHEAD_STATE_DIR";

/// State directory inside the bulkhead sandbox.
pub const DEFAULT_STATE_DIR: &str = "/state";

/// Returns the state directory: `BULKHEAD_STATE_DIR` when set and not empty, else `/state`.
pub fn state_dir() -> PathBuf {
    match std::env::var_os(STATE_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(DEFAULT_STATE_DIR),
    }
}
