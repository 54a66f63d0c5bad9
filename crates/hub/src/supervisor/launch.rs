//! Starting one spoke: its cgroup, the launcher process, the channel and the Start call.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bulkhead_proto::v1::{StartRequest, StartResponse};
use bulkhead_sandbox::cgroup::{Limits, SpokeCgroup};

use crate::reconcile::LedgerEntry;
use bulkhead_sandbox::launch::LaunchSpec;
use bulkhead_sandbox::mounts::{Bind, MountPlan};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use super::channel::SpokeClient;

use crate::audit::AuditLog;
use crate::config::Config;
use crate::egress::{self, EgressStats};
use crate::registry::AppEntry;

/// The folder inside the sandbox where a bare command's binary is bound.
const APP_BIN_DIR: &str = "/app/bin";
/// PATH inside the sandbox.
const SANDBOX_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Ledger(#[from] crate::reconcile::ReconcileError),
    #[error("cannot create the spoke's cgroup: {0}")]
    Cgroup(String),
    #[error("invalid mount plan: {0}")]
    Mounts(String),
    #[error("cannot prepare the state directory {path}: {source}")]
    StateDir { path: PathBuf, source: std::io::Error },
    #[error("cannot create the spoke channel: {0}")]
    Channel(std::io::Error),
    #[error("cannot create the egress channel: {0}")]
    EgressChannel(std::io::Error),
    #[error("cannot run the spoke launcher {path}: {source}; check [paths] spoke in the hub config")]
    Spawn { path: PathBuf, source: std::io::Error },
    #[error("the spoke launcher failed: {0}")]
    Launcher(String),
    #[error("the spoke did not start within {0:?}; raise [spokes] start_timeout if the app is slow to start")]
    Timeout(Duration),
    #[error("the spoke runtime did not accept the channel: {0}")]
    Connect(String),
    #[error("{0}")]
    Start(String),
    #[error("{0}")]
    MissingPrimitive(#[from] bulkhead_sandbox::probe::ProbeError),
}

/// A spoke whose app finished the MCP handshake.
pub struct Launched {
    pub launcher: Child,
    pub runtime_pid: u32,
    pub app_pid: u32,
    pub client: SpokeClient,
    pub cgroup: SpokeCgroup,
    /// The ledger file that names the cgroup, deleted once the cgroup is removed.
    pub ledger: LedgerEntry,
    pub catalog: StartResponse,
    pub started_at: SystemTime,
    /// The proxy's counters, for an app with egress.
    pub egress: Option<Arc<EgressStats>>,
}

/// Starts the spoke of `entry`. On failure everything created so far is removed.
pub async fn launch(config: &Config, entry: &AppEntry, audit: &Arc<AuditLog>) -> Result<Launched, LaunchError> {
    // Fail closed: a spoke never starts with less isolation than every spoke gets.
    bulkhead_sandbox::probe::require_spoke_primitives()?;
    let manifest = &entry.manifest;
    let limits = Limits {
        memory_bytes: Some(manifest.limits.memory_bytes),
        pids: Some(manifest.limits.pids),
        cpu_millis: Some(manifest.limits.cpu_millis),
    };
    let cgroup_name = format!("{}-{}", manifest.name, &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let cgroup = SpokeCgroup::create(&cgroup_name, &limits).map_err(|error| LaunchError::Cgroup(error.to_string()))?;
    let ledger = match LedgerEntry::record(&config.paths.state, &cgroup_name, &cgroup.dirs()) {
        Ok(ledger) => ledger,
        Err(error) => {
            super::slot::remove_cgroup(&manifest.name, cgroup).await;
            return Err(error.into());
        }
    };
    match start_in_cgroup(config, entry, &cgroup, audit).await {
        Ok(Started { launcher, runtime_pid, client, catalog, egress }) => {
            let app_pid = host_child_pid(runtime_pid).unwrap_or(0);
            let started_at = SystemTime::now();
            Ok(Launched { launcher, runtime_pid, app_pid, client, cgroup, ledger, catalog, started_at, egress })
        }
        Err(error) => {
            if super::slot::remove_cgroup(&manifest.name, cgroup).await {
                ledger.remove();
            }
            Err(error)
        }
    }
}

/// A spoke whose runtime returned from Start, before the caller adds its cgroup and ledger entry.
struct Started {
    launcher: Child,
    runtime_pid: u32,
    client: SpokeClient,
    catalog: StartResponse,
    egress: Option<Arc<EgressStats>>,
}

async fn start_in_cgroup(
    config: &Config,
    entry: &AppEntry,
    cgroup: &SpokeCgroup,
    audit: &Arc<AuditLog>,
) -> Result<Started, LaunchError> {
    let manifest = &entry.manifest;
    let has_egress = manifest.network.mode.has_egress();
    let (plan, command) = mount_plan(config, entry)?;
    let spec = LaunchSpec {
        app: manifest.name.clone(),
        host_uid: entry.host_id,
        host_gid: entry.host_id,
        mounts: plan,
        cgroup_procs: cgroup.procs_files(),
        runtime_args: vec!["bulkhead-spoke".into(), "serve".into()],
        runtime_env: std::env::var("BULKHEAD_SPOKE_LOG")
            .map(|filter| vec![("BULKHEAD_SPOKE_LOG".to_string(), filter)])
            .unwrap_or_default(),
        egress_channel: has_egress,
    };
    let spec_json = serde_json::to_vec(&spec).map_err(|error| LaunchError::Launcher(error.to_string()))?;

    let (hub_end, spoke_end) = std::os::unix::net::UnixStream::pair().map_err(LaunchError::Channel)?;
    let spoke_fd = spoke_end.as_raw_fd();
    let (egress_hub_end, egress_spoke_end) = match has_egress {
        true => {
            let (hub, spoke) = egress_channel().map_err(LaunchError::EgressChannel)?;
            (Some(hub), Some(spoke))
        }
        false => (None, None),
    };
    let egress_fd = egress_spoke_end.as_ref().map(AsRawFd::as_raw_fd);
    let mut command_line = Command::new(&config.paths.spoke);
    command_line
        .arg("launch")
        .env_clear()
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: the hook runs in the forked child before exec and makes only async-signal-safe system
    // calls (prctl, dup2, fcntl, close_range) on descriptors that exist in the child.
    unsafe {
        command_line.pre_exec(move || prepare_launcher_fds(spoke_fd, egress_fd));
    }
    let mut launcher = command_line
        .spawn()
        .map_err(|source| LaunchError::Spawn { path: config.paths.spoke.clone(), source })?;
    drop(spoke_end);
    drop(egress_spoke_end);
    // The proxy starts before Start, so that an app that fetches during its MCP handshake is served.
    let egress = match egress_hub_end {
        Some(channel) => Some(start_proxy(channel, config, manifest, audit).map_err(LaunchError::EgressChannel)?),
        None => None,
    };

    let timeout = config.spokes.start_timeout;
    let started = tokio::time::timeout(timeout, async {
        let mut stdin = launcher.stdin.take().ok_or_else(|| LaunchError::Launcher("no stdin pipe".into()))?;
        stdin.write_all(&spec_json).await.map_err(|error| LaunchError::Launcher(error.to_string()))?;
        drop(stdin);
        if let Some(stderr) = launcher.stderr.take() {
            tokio::spawn(forward_logs(manifest.name.clone(), stderr));
        }
        let runtime_pid = read_launcher_status(&mut launcher).await?;
        let client = connect(hub_end, &manifest.name).await?;
        let catalog = client
            .clone()
            .start(StartRequest {
                app: manifest.name.clone(),
                command,
                args: manifest.args.clone(),
                env: app_environment(manifest),
                cwd: manifest.cwd.display().to_string(),
                init_timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                network_mode: manifest.network.mode.as_str().into(),
                proxy_port: if has_egress { u32::from(egress::PROXY_PORT) } else { 0 },
                ask_timeout_ms: crate::sampling::ask_timeout_ms(&config.llm),
            })
            .await
            .map_err(|status| LaunchError::Start(status.message().to_string()))?
            .into_inner();
        Ok::<_, LaunchError>((runtime_pid, client, catalog))
    })
    .await;
    match started {
        Ok(Ok((runtime_pid, client, catalog))) => Ok(Started { launcher, runtime_pid, client, catalog, egress }),
        Ok(Err(error)) => {
            stop_failed_launcher(&mut launcher).await;
            Err(error)
        }
        Err(_) => {
            stop_failed_launcher(&mut launcher).await;
            Err(LaunchError::Timeout(timeout))
        }
    }
}

/// Puts the spoke's channel at fd 3 and the egress channel, if any, at fd 4, closes every other
/// inherited descriptor above them, and ties the launcher's life to the hub's.
fn prepare_launcher_fds(spoke_fd: i32, egress_fd: Option<i32>) -> std::io::Result<()> {
    /// Both channels are first copied to this number or above, so that placing one at 3 or 4
    /// cannot overwrite the other.
    const ABOVE_TARGETS: i32 = 10;
    // SAFETY: prctl, dup2, fcntl and close_range are async-signal-safe system calls; they touch only
    // this child's descriptor table and its parent-death signal.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let channel = libc::fcntl(spoke_fd, libc::F_DUPFD_CLOEXEC, ABOVE_TARGETS);
        if channel < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let egress = match egress_fd {
            Some(fd) => {
                let copy = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, ABOVE_TARGETS);
                if copy < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Some(copy)
            }
            None => None,
        };
        // dup2 clears FD_CLOEXEC on the new descriptor, so the launcher inherits both.
        if libc::dup2(channel, 3) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut first_closed = 4u32;
        if let Some(egress) = egress {
            if libc::dup2(egress, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            first_closed = 5;
        }
        libc::syscall(libc::SYS_close_range, first_closed, u32::MAX, 0u32);
    }
    Ok(())
}

/// Creates the egress channel: a SOCK_SEQPACKET socketpair, so that each passed connection is one
/// message with its own descriptor.
fn egress_channel() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).map_err(std::io::Error::from)
}

/// Starts the hub's proxy task for one egress spoke and returns its counters.
fn start_proxy(
    channel: OwnedFd,
    config: &Config,
    manifest: &crate::manifest::Manifest,
    audit: &Arc<AuditLog>,
) -> std::io::Result<Arc<EgressStats>> {
    let stats = Arc::new(EgressStats::default());
    let context = egress::ProxyContext {
        app: manifest.name.clone(),
        allow: manifest.network.allow.clone(),
        max_connections: manifest.network.max_connections,
        config: config.egress.clone(),
        audit: Arc::clone(audit),
        stats: Arc::clone(&stats),
    };
    egress::spawn(channel, context)?;
    Ok(stats)
}

async fn stop_failed_launcher(launcher: &mut Child) {
    let _ = launcher.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(2), launcher.wait()).await;
}

/// Reads the launcher's one status line: `{"pid":N}` or `{"error":"..."}`.
async fn read_launcher_status(launcher: &mut Child) -> Result<u32, LaunchError> {
    let stdout = launcher.stdout.take().ok_or_else(|| LaunchError::Launcher("no stdout pipe".into()))?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .await
        .map_err(|error| LaunchError::Launcher(error.to_string()))?;
    let status: serde_json::Value = match serde_json::from_str(line.trim()) {
        Ok(value) => value,
        Err(_) if line.trim().is_empty() => {
            let exit = launcher.wait().await.map(|s| s.to_string()).unwrap_or_default();
            return Err(LaunchError::Launcher(format!("it exited without a status ({exit}); see the hub log")));
        }
        Err(_) => return Err(LaunchError::Launcher(format!("unexpected status line {:?}", line.trim()))),
    };
    if let Some(message) = status.get("error").and_then(|value| value.as_str()) {
        return Err(LaunchError::Launcher(message.to_string()));
    }
    status
        .get("pid")
        .and_then(|value| value.as_u64())
        .and_then(|pid| u32::try_from(pid).ok())
        .ok_or_else(|| LaunchError::Launcher(format!("unexpected status line {:?}", line.trim())))
}

/// Connects a gRPC client over the hub's end of the socketpair.
async fn connect(stream: std::os::unix::net::UnixStream, app: &str) -> Result<SpokeClient, LaunchError> {
    stream.set_nonblocking(true).map_err(LaunchError::Channel)?;
    let stream = tokio::net::UnixStream::from_std(stream).map_err(LaunchError::Channel)?;
    super::channel::connect(stream, app.to_string())
        .await
        .map_err(|error| LaunchError::Connect(error.to_string()))
}

/// Builds the mount plan, and the command's path inside the sandbox.
fn mount_plan(config: &Config, entry: &AppEntry) -> Result<(MountPlan, String), LaunchError> {
    let manifest = &entry.manifest;
    let mounts_error = |error: bulkhead_sandbox::mounts::MountError| LaunchError::Mounts(error.to_string());
    let mut plan = MountPlan::with_system_paths(&config.sandbox.system_paths).map_err(mounts_error)?;
    plan.tmp_size_bytes = config.sandbox.tmp_size_bytes;
    for mount in &manifest.mounts {
        plan.add_bind(Bind {
            source: mount.source.clone(),
            target: mount.target.clone(),
            writable: mount.writable,
            optional: false,
        })
        .map_err(mounts_error)?;
    }
    let mut command = manifest.command.clone();
    if !command.contains('/') {
        let candidate = config.paths.app_bin.join(&command);
        if candidate.is_file() {
            let target = Path::new(APP_BIN_DIR).join(&command);
            plan.add_bind(Bind { source: candidate, target: target.clone(), writable: false, optional: false })
                .map_err(mounts_error)?;
            command = target.display().to_string();
        }
    }
    if manifest.state.persistent {
        let dir = config.paths.state.join("apps").join(&manifest.name);
        prepare_state_dir(&dir, entry.host_id)?;
        plan.state_dir = Some(dir);
    }
    Ok((plan, command))
}

/// Creates the app's private state directory, owned by its host uid and closed to everyone else.
fn prepare_state_dir(dir: &Path, host_id: u32) -> Result<(), LaunchError> {
    use std::os::unix::fs::PermissionsExt;
    let state_error = |source| LaunchError::StateDir { path: dir.to_path_buf(), source };
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(state_error)?;
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o711)).map_err(state_error)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(state_error(error)),
    }
    std::os::unix::fs::lchown(dir, Some(host_id), Some(host_id)).map_err(state_error)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(state_error)?;
    Ok(())
}

/// Builds the app's environment: its manifest's `[env]`, with PATH and HOME filled in when missing.
/// An egress app also gets the proxy variables, which replace any the manifest sets.
fn app_environment(manifest: &crate::manifest::Manifest) -> std::collections::HashMap<String, String> {
    let mut env: std::collections::HashMap<String, String> =
        manifest.env.iter().map(|(key, value)| (key.clone(), value.clone())).collect();
    env.entry("PATH".into()).or_insert_with(|| SANDBOX_PATH.into());
    env.entry("HOME".into()).or_insert_with(|| "/state".into());
    if manifest.network.mode.has_egress() {
        env.extend(egress::proxy_environment());
    }
    env
}

/// Finds the host pid of the spoke runtime's child, the app.
fn host_child_pid(runtime_pid: u32) -> Option<u32> {
    let path = format!("/proc/{runtime_pid}/task/{runtime_pid}/children");
    let text = std::fs::read_to_string(path).ok()?;
    text.split_whitespace().next().and_then(|pid| pid.parse().ok())
}

/// Forwards the spoke's stderr (the runtime's and the app's) to the hub's log, at most
/// `LOG_LINES_PER_SECOND` lines a second; the rest are counted and reported.
async fn forward_logs(app: String, stderr: tokio::process::ChildStderr) {
    const LOG_LINES_PER_SECOND: u32 = 50;
    let mut lines = BufReader::new(stderr).lines();
    let mut window = tokio::time::Instant::now();
    let mut in_window = 0u32;
    let mut dropped = 0u64;
    while let Ok(Some(line)) = lines.next_line().await {
        // The per-app buffer has its own byte cap, so it keeps lines that the rate limit drops.
        crate::app_logs::global().push(&app, line.clone());
        if window.elapsed() >= Duration::from_secs(1) {
            if dropped > 0 {
                tracing::warn!(app = %app, dropped, "spoke log lines dropped by the rate limit");
            }
            window = tokio::time::Instant::now();
            in_window = 0;
            dropped = 0;
        }
        in_window += 1;
        if in_window > LOG_LINES_PER_SECOND {
            dropped += 1;
            continue;
        }
        tracing::info!(target: "bulkhead::spoke", app = %app, "{line}");
    }
}
