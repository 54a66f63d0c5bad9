//! Starting the app under its seccomp filter and connecting an MCP client to its stdio.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use bulkhead_proto::v1::StartRequest;
use bulkhead_sandbox::seccomp::{NetworkFamilies, SeccompPolicy};
use nix::unistd::Pid;
use std::sync::Arc;

// MCP sampling is deprecated in the 2026-07-28 protocol revision, and rmcp 3.11 marks its types so.
// The runtime still serves it for apps written against earlier revisions.
#[allow(deprecated)]
use rmcp::model::{CreateMessageRequestParams, CreateMessageResult, SamplingCapability};
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation};
use rmcp::service::{NotificationContext, RequestContext, RunningService};
use rmcp::{ClientHandler, ErrorData as McpError, RoleClient, ServiceExt};
use tokio::sync::watch;

use crate::asks::Asks;
use crate::reaper::Reaper;

/// The MCP client session with a running app.
pub type McpClient = RunningService<RoleClient, AppEvents>;

/// The MCP client handler: it sends the runtime's client info, counts the app's
/// notifications/tools/list_changed, so that WatchCatalog can tell the hub, and forwards the app's
/// sampling requests to the hub on the ask channel.
pub struct AppEvents {
    info: ClientConfig,
    tools_changed: watch::Sender<u64>,
    asks: Arc<Asks>,
}

#[allow(deprecated)]
impl ClientHandler for AppEvents {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.tools_changed.send_modify(|generation| *generation += 1);
        tracing::info!(generation = *self.tools_changed.borrow(), "the app sent tools/list_changed");
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        crate::sampling::create_message(&self.asks, params).await
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid start request: {0}")]
    InvalidRequest(String),
    #[error("cannot start the egress proxy: {0}")]
    Egress(#[from] crate::egress::EgressError),
    #[error("cannot build the seccomp filter: {0}")]
    Seccomp(String),
    #[error("cannot start {command:?}: {source}")]
    Spawn { command: String, source: std::io::Error },
    #[error("the app's stdio pipes are missing")]
    Pipes(#[source] std::io::Error),
    #[error("the MCP handshake with the app failed: {0}")]
    Handshake(String),
    #[error("the app did not finish the MCP handshake within {0:?}")]
    HandshakeTimeout(Duration),
}

/// A started app: its pid inside the spoke, the MCP session with it, the count of its
/// tools/list_changed notifications, and its asks to the hub.
pub struct RunningApp {
    pub pid: Pid,
    pub client: McpClient,
    pub tools_changed: watch::Receiver<u64>,
    pub asks: Arc<Asks>,
}

/// Spawns the app from `request` and completes the MCP initialize handshake.
pub async fn start(request: &StartRequest, reaper: &Reaper) -> Result<RunningApp, AppError> {
    if request.command.is_empty() {
        return Err(AppError::InvalidRequest("the command is empty".into()));
    }
    // Both modes allow inet sockets: the namespace holds only loopback, and an egress app reaches
    // the proxy on 127.0.0.1.
    let network = match request.network_mode.as_str() {
        "" | "none" => NetworkFamilies::UnixAndInet,
        "egress" => {
            crate::egress::start(request.proxy_port)?;
            NetworkFamilies::UnixAndInet
        }
        other => return Err(AppError::InvalidRequest(format!("unknown network mode {other:?}"))),
    };
    // Compile before fork: the pre_exec hook must not allocate.
    let filters = SeccompPolicy { network }
        .compile()
        .map_err(|error| AppError::Seccomp(error.to_string()))?;

    let mut command = Command::new(&request.command);
    command
        .args(&request.args)
        .env_clear()
        .envs(&request.env)
        .current_dir(if request.cwd.is_empty() { "/" } else { &request.cwd })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // SAFETY: the hook runs in the forked child before exec and only makes the async-signal-safe
    // prctl and seccomp system calls, on filters compiled before the fork.
    unsafe {
        command.pre_exec(move || {
            bulkhead_sandbox::privileges::set_parent_death_signal(libc::SIGKILL)?;
            bulkhead_sandbox::privileges::set_no_new_privs()?;
            filters.apply()
        });
    }

    let mut child = command.spawn().map_err(|source| AppError::Spawn {
        command: request.command.clone(),
        source,
    })?;
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    // No await between spawn and this line: the reaper runs on this same thread.
    reaper.set_app_pid(pid);

    let stdin = child.stdin.take().ok_or_else(|| AppError::Pipes(missing_pipe()))?;
    let stdout = child.stdout.take().ok_or_else(|| AppError::Pipes(missing_pipe()))?;
    let stdin = tokio::process::ChildStdin::from_std(stdin).map_err(AppError::Pipes)?;
    let stdout = tokio::process::ChildStdout::from_std(stdout).map_err(AppError::Pipes)?;
    // The std Child is dropped without waiting: the reaper owns the app's exit status.
    drop(child);

    // Sampling without tools or context inclusion: the hub completes it from the app's own messages.
    let mut capabilities = ClientCapabilities::default();
    #[allow(deprecated)]
    {
        capabilities.sampling = Some(SamplingCapability::default());
    }
    let info = ClientConfig::new(capabilities, Implementation::new("bulkhead-spoke", env!("CARGO_PKG_VERSION")));
    let (tools_changed, changes) = watch::channel(0);
    let asks = Arc::new(Asks::new(request.ask_timeout_ms));
    let handler = AppEvents { info, tools_changed, asks: asks.clone() };
    let timeout = Duration::from_millis(if request.init_timeout_ms == 0 { 20_000 } else { request.init_timeout_ms });
    let client = tokio::time::timeout(timeout, handler.serve((stdout, stdin)))
        .await
        .map_err(|_| AppError::HandshakeTimeout(timeout))?
        .map_err(|error| AppError::Handshake(error.to_string()))?;
    Ok(RunningApp { pid, client, tools_changed: changes, asks })
}

fn missing_pipe() -> std::io::Error {
    std::io::Error::other("pipe not created")
}
