//! The spoke runtime's main loop: PID 1 inside the sandbox, gRPC server on the inherited channel.

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bulkhead_proto::v1::spoke_service_server::SpokeServiceServer;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::signal::{kill, Signal};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio_stream::StreamExt;

use crate::reaper::Reaper;
use crate::service::{Spoke, SpokeHandle};

/// The descriptor number of the hub channel, set up by the launcher.
const CHANNEL_FD: i32 = 3;
/// How long a dying runtime waits, so the hub receives the responses to calls that were in flight.
const EXIT_LINGER: Duration = Duration::from_millis(100);
/// The time the app gets between SIGTERM and SIGKILL when the runtime receives SIGTERM or SIGINT.
const DEFAULT_GRACE: Duration = Duration::from_millis(500);

pub fn serve() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BULKHEAD_SPOKE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rmcp=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .init();

    // The app shares this process's uid, so without this /proc/1/mem would let it rewrite the
    // runtime. Fail closed: a runtime that stays dumpable does not serve.
    if let Err(error) = bulkhead_sandbox::privileges::clear_dumpable() {
        eprintln!("bulkhead-spoke: {error}");
        return ExitCode::from(125);
    }

    // One thread is enough for one app, and keeps the reaper ordering simple.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("bulkhead-spoke: cannot start the async runtime: {error}");
            return ExitCode::from(125);
        }
    };
    match runtime.block_on(run()) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            tracing::error!("spoke runtime failed: {error:#}");
            ExitCode::from(125)
        }
    }
}

async fn run() -> anyhow::Result<u8> {
    // SAFETY: the launcher leaves the hub channel open at fd 3 and nothing else in this process
    // owns or closes that descriptor.
    let channel = unsafe { OwnedFd::from_raw_fd(CHANNEL_FD) };
    // The launcher cleared close-on-exec so that fd 3 survives the exec into this runtime. Set it
    // again before the app starts: an app holding fd 3 could write frames into the hub's channel.
    let flags = fcntl(&channel, FcntlArg::F_GETFD)?;
    fcntl(&channel, FcntlArg::F_SETFD(FdFlag::from_bits_retain(flags) | FdFlag::FD_CLOEXEC))?;
    let channel = std::os::unix::net::UnixStream::from(channel);
    channel.set_nonblocking(true)?;
    let channel = tokio::net::UnixStream::from_std(channel)?;

    let reaper = Reaper::start()?;
    let (shutdown_tx, mut shutdown_rx) = watch::channel(None::<Duration>);
    let spoke = Arc::new(Spoke::new(reaper, shutdown_tx.clone()));
    let mut app_exit = spoke.exit();

    // The stream yields the one pre-connected channel and then stays pending, so the server keeps
    // running until this process decides to stop.
    let incoming = tokio_stream::once(Ok::<_, std::io::Error>(channel)).chain(tokio_stream::pending());
    let server = tonic::transport::Server::builder()
        .add_service(SpokeServiceServer::new(SpokeHandle(spoke.clone())))
        .serve_with_incoming(incoming);
    let server = tokio::spawn(server);

    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let grace = tokio::select! {
        _ = app_exit.wait_for(Option::is_some) => None,
        requested = shutdown_rx.wait_for(Option::is_some) => requested.ok().and_then(|grace| *grace),
        _ = terminate.recv() => Some(DEFAULT_GRACE),
        _ = interrupt.recv() => Some(DEFAULT_GRACE),
        result = server => {
            anyhow::bail!("the hub channel closed: {result:?}");
        }
    };

    if let Some(grace) = grace {
        stop_app(&spoke, grace).await;
    }
    let exit = *spoke.exit().borrow();
    match exit {
        Some(exit) => {
            tracing::info!("the app {exit}");
            tokio::time::sleep(EXIT_LINGER).await;
            Ok(exit.as_exit_code())
        }
        None => Ok(0),
    }
}

/// Sends SIGTERM to the app, then SIGKILL after `grace` if it is still running.
async fn stop_app(spoke: &Spoke, grace: Duration) {
    let Some(pid) = spoke.app_pid() else { return };
    let mut exit = spoke.exit();
    if exit.borrow().is_some() {
        return;
    }
    let _ = kill(pid, Signal::SIGTERM);
    if tokio::time::timeout(grace, exit.wait_for(Option::is_some)).await.is_err() {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = tokio::time::timeout(Duration::from_secs(2), exit.wait_for(Option::is_some)).await;
    }
}
