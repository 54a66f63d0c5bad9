//! The daemon's life: bind, serve, reload on SIGHUP, and shut down on SIGTERM or SIGINT.

use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::audit::{AuditError, AuditLog};
use crate::config::Config;
use crate::flow::grants::{GrantError, GrantStore};
use crate::hub::Hub;
use crate::registry::Registry;
use crate::server::{self, ServerError};
use crate::{error::HubError, notify};

/// How long shutdown waits for the gRPC servers to finish in-flight responses.
const SERVER_DRAIN: Duration = Duration::from_millis(300);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Grants(#[from] GrantError),
    #[error("cannot create the state directory {path}: {source}")]
    StateDir { path: String, source: std::io::Error },
    #[error("cannot listen on {address}: {source}")]
    Tcp { address: String, source: std::io::Error },
    #[error(transparent)]
    Reconcile(#[from] crate::reconcile::ReconcileError),
    #[error("the startup reconcile task failed: {0}")]
    ReconcileTask(String),
    #[error("cannot use the socket passed by the service manager (LISTEN_FDS): {0}; pass exactly one Unix stream socket, or start bulkheadd without socket activation")]
    ListenFds(std::io::Error),
    #[error("cannot install the {0} handler: {1}")]
    Signal(&'static str, std::io::Error),
}

/// Runs the hub until SIGTERM or SIGINT, then stops every spoke and returns.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    let config = Arc::new(config);
    let state = &config.paths.state;
    std::fs::create_dir_all(state)
        .map_err(|source| DaemonError::StateDir { path: state.display().to_string(), source })?;
    let state_dir = state.clone();
    let reconciled = tokio::task::spawn_blocking(move || crate::reconcile::reconcile(&state_dir))
        .await
        .map_err(|error| DaemonError::ReconcileTask(error.to_string()))??;
    if reconciled.leftover_spokes > 0 {
        tracing::info!(
            leftover_spokes = reconciled.leftover_spokes,
            removed_cgroups = reconciled.removed_cgroups,
            failed_cgroups = reconciled.failed_cgroups,
            "removed the spokes left by the previous run"
        );
    }
    let registry = Registry::load(&config.paths.apps, state, config.sandbox.uid_base, config.sandbox.uid_count)?;
    let audit = AuditLog::open(state, config.audit.record_arguments)?;
    let grants = GrantStore::load(state)?;
    let catalogs = crate::catalog::Catalogs::load(state, audit.clone()).map_err(HubError::from)?;
    let llm = crate::query::backend(&config.llm)?;
    tracing::info!(backend = %llm.describe(), sampling_per_minute = config.llm.sampling_per_minute, "LLM backend ready");
    let hub = Hub::new(config.clone(), registry, audit, grants, catalogs, llm);

    let mut terminate = signal(SignalKind::terminate()).map_err(|e| DaemonError::Signal("SIGTERM", e))?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| DaemonError::Signal("SIGINT", e))?;
    let mut hangup = signal(SignalKind::hangup()).map_err(|e| DaemonError::Signal("SIGHUP", e))?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut stop: watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };

    let socket = &config.server.socket;
    let activated = activated_listener()?;
    let socket_activated = activated.is_some();
    let unix = match activated {
        Some(listener) => {
            tracing::info!(socket = %socket.display(), "serving on the socket passed by the service manager");
            listener
        }
        None => server::bind_unix(socket, config.server.socket_gid)?,
    };
    let routes = server::routes(hub.clone()).await?;
    let mut servers = tokio::task::JoinSet::new();
    servers.spawn(server::serve_unix(unix, routes.clone(), stopped(stop_rx.clone())));
    if let (Some(address), Some(token)) = (&config.server.tcp, config.server.read_token()?) {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| DaemonError::Tcp { address: address.to_string(), source })?;
        let bound = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| address.to_string());
        tracing::info!(address = %bound, "serving gRPC on TCP with bearer token authentication");
        servers.spawn(server::serve_tcp(listener, routes, token, stopped(stop_rx.clone())));
    }

    let (apps, problems) = hub.apps().await;
    tracing::info!(socket = %socket.display(), apps = apps.len(), problems = problems.len(), "bulkheadd serving");
    let status = notify::hub_status_line(&hub).await;
    notify::ready(&status);
    let watchdog = notify::spawn_watchdog();
    let status_updates = notify::spawn_status_updates(hub.clone(), status);

    loop {
        tokio::select! {
            _ = terminate.recv() => { tracing::info!("SIGTERM received; shutting down"); break }
            _ = interrupt.recv() => { tracing::info!("SIGINT received; shutting down"); break }
            _ = hangup.recv() => {
                tracing::info!("SIGHUP received; reloading manifests");
                notify::reloading();
                match hub.reload().await {
                    Ok(_) => notify::ready(&notify::hub_status_line(&hub).await),
                    Err(error) => {
                        tracing::error!("reload failed: {error}");
                        notify::ready("reload failed; serving the previous apps");
                    }
                }
            }
            Some(result) = servers.join_next() => {
                tracing::error!("a gRPC server stopped unexpectedly: {result:?}");
                break;
            }
        }
    }

    notify::stopping();
    status_updates.abort();
    stop_tx.send_replace(true);
    hub.supervisor.shutdown().await;
    let _ = tokio::time::timeout(SERVER_DRAIN, async { while servers.join_next().await.is_some() {} }).await;
    servers.abort_all();
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    // A socket passed by the service manager stays: the socket unit owns it and queues new
    // connections until the next start.
    if socket_activated {
        tracing::info!("bulkheadd stopped");
        return Ok(());
    }
    if let Err(error) = std::fs::remove_file(socket) {
        tracing::warn!(socket = %socket.display(), "cannot remove the socket: {error}");
    }
    tracing::info!("bulkheadd stopped");
    Ok(())
}

/// Returns the Unix listener that the service manager passed through LISTEN_FDS, or None when
/// bulkheadd was not socket-activated. More than one descriptor, or one that is not a Unix stream
/// socket, is an error rather than a silent fallback to binding.
fn activated_listener() -> Result<Option<tokio::net::UnixListener>, DaemonError> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    let mut fds = sd_notify::listen_fds().map_err(DaemonError::ListenFds)?;
    let count = fds.len();
    let Some(fd) = fds.next() else { return Ok(None) };
    if count != 1 {
        let message = format!("{count} descriptors were passed, but bulkheadd serves exactly one socket");
        return Err(DaemonError::ListenFds(std::io::Error::new(std::io::ErrorKind::InvalidInput, message)));
    }
    // SAFETY: sd_notify::listen_fds checked LISTEN_PID against our pid, so fd 3 was passed to this
    // process by the service manager and nothing else in bulkheadd owns or closes it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let kind = nix::sys::socket::getsockopt(&owned, nix::sys::socket::sockopt::SockType).map_err(|errno| DaemonError::ListenFds(errno.into()))?;
    let address = nix::sys::socket::getsockname::<nix::sys::socket::UnixAddr>(owned.as_raw_fd());
    if kind != nix::sys::socket::SockType::Stream || address.is_err() {
        let message = format!("descriptor {fd} is not a Unix stream socket");
        return Err(DaemonError::ListenFds(std::io::Error::new(std::io::ErrorKind::InvalidInput, message)));
    }
    let listener = std::os::unix::net::UnixListener::from(owned);
    listener.set_nonblocking(true).map_err(DaemonError::ListenFds)?;
    let listener = tokio::net::UnixListener::from_std(listener).map_err(DaemonError::ListenFds)?;
    Ok(Some(listener))
}
