//! The hostile app: a test-only MCP server whose every tool tries one way out of its sandbox.
//!
//! Each tool makes one attempt with raw system calls and returns a JSON object
//! `{"attempt": NAME, "result": RESULT, "detail": TEXT}`. RESULT is `"ok"` when the call
//! succeeded, the errno name (such as `"EPERM"`) when it failed, or a description of how a helper
//! process ended (such as `"killed by SIGSYS"`). The end-to-end escape suite compares RESULT with
//! the expected outcome. Never register this app outside tests.

mod attempts;
mod child;
mod fs;
mod kernel;
mod legit;
mod net;
mod procs;
mod resources;

use std::ffi::CString;
use std::io;

use rmcp::{
    handler::server::{
        router::tool::{ToolRoute, ToolRouter},
        tool::ToolCallContext,
    },
    model::{CallToolResponse, CallToolResult, ContentBlock, JsonObject, Tool},
    tool_handler, ServerHandler,
};
use serde::Serialize;
use serde_json::{json, Value};

pub use child::run_helper_mode;

/// What one attempt observed.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Tool name of the attempt.
    pub attempt: String,
    /// `"ok"`, an errno name, or how a helper process ended.
    pub result: String,
    /// Free text: bytes read, counts, or the step that failed.
    pub detail: String,
}

impl Outcome {
    fn new(result: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            attempt: String::new(),
            result: result.into(),
            detail: detail.into(),
        }
    }

    /// Builds the outcome of a failed call from its io::Error.
    fn error(error: &io::Error, detail: impl Into<String>) -> Self {
        Self::new(errno_name(error), detail)
    }

    /// Builds the outcome of a raw syscall return value, reading errno when it is negative.
    fn from_ret(ret: libc::c_long, detail: impl Into<String>) -> Self {
        if ret < 0 {
            Self::error(&io::Error::last_os_error(), detail)
        } else {
            Self::new("ok", format!("{} (returned {ret})", detail.into()))
        }
    }
}

/// Arguments of one call, with typed accessors that fall back to a default.
pub struct Args<'a>(&'a JsonObject);

impl Args<'_> {
    fn str(&self, key: &str) -> String {
        self.0
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    fn int(&self, key: &str, default: i64) -> i64 {
        self.0.get(key).and_then(Value::as_i64).unwrap_or(default)
    }
}

/// One tool: its name, description, parameter names with JSON types, and the attempt itself.
pub struct Attempt {
    pub name: &'static str,
    pub description: &'static str,
    pub params: &'static [(&'static str, &'static str)],
    pub run: fn(&Args) -> Outcome,
}

/// Returns the symbolic name of an OS error, such as `"EPERM"`, or `"errno N"` for a rare one.
pub fn errno_name(error: &io::Error) -> String {
    let Some(code) = error.raw_os_error() else {
        return error.to_string();
    };
    let name = match code {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::EROFS => "EROFS",
        libc::EMLINK => "EMLINK",
        libc::ENOSYS => "ENOSYS",
        libc::ELOOP => "ELOOP",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        _ => return format!("errno {code}"),
    };
    name.to_string()
}

/// Converts a path argument to a C string. A NUL byte becomes an empty string, which every
/// attempt reports as ENOENT.
fn c_path(path: &str) -> CString {
    CString::new(path).unwrap_or_default()
}

/// MCP server with one tool per attempt.
#[derive(Clone)]
pub struct HostileServer {
    tool_router: ToolRouter<Self>,
}

impl Default for HostileServer {
    fn default() -> Self {
        Self::new()
    }
}

impl HostileServer {
    /// Builds the server with a route for every attempt in [`attempts::ALL`].
    pub fn new() -> Self {
        let mut tool_router = ToolRouter::new();
        for attempt in attempts::ALL {
            tool_router.add_route(route(attempt));
        }
        Self { tool_router }
    }
}

fn route(attempt: &'static Attempt) -> ToolRoute<HostileServer> {
    let properties: serde_json::Map<String, Value> = attempt
        .params
        .iter()
        .map(|&(name, kind)| (name.to_string(), json!({ "type": kind })))
        .collect();
    let schema = json!({ "type": "object", "properties": properties });
    let schema = match schema {
        Value::Object(object) => object,
        _ => JsonObject::new(),
    };
    let tool = Tool::new(attempt.name, attempt.description, schema);
    ToolRoute::new_dyn(tool, move |context: ToolCallContext<'_, HostileServer>| {
        let arguments = context.arguments.clone().unwrap_or_default();
        Box::pin(async move {
            let mut outcome = (attempt.run)(&Args(&arguments));
            outcome.attempt = attempt.name.to_string();
            tracing::debug!(attempt = attempt.name, result = %outcome.result, "attempt done");
            let text = serde_json::to_string(&outcome).unwrap_or_default();
            let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
            result.structured_content = serde_json::to_value(&outcome).ok();
            Ok(CallToolResponse::Complete(result))
        })
    })
}

#[tool_handler(
    router = self.tool_router,
    name = "bulkhead-app-hostile",
    instructions = "Test-only app: every tool tries to escape the sandbox and reports the result."
)]
impl ServerHandler for HostileServer {}
