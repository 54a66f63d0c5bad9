//! Process setup shared by the app binaries: logging to stderr and serving MCP on stdio.

use anyhow::Context;
use rmcp::{transport::stdio_pipes, ServerHandler, ServiceExt};
use tracing_subscriber::EnvFilter;

/// Upper bound on tokio's blocking threads. Stdio falls back to two blocking threads when stdin
/// and stdout are not pipes, and every thread counts against the spoke's pids limit (16 in the
/// shipped manifests), so the pool stays small.
const MAX_BLOCKING_THREADS: usize = 4;

/// Sends tracing output to stderr, because stdout carries the MCP messages.
///
/// The filter comes from `RUST_LOG`. The default logs this crate at `info` and rmcp at `warn`,
/// because rmcp logs every notification at `info`.
pub fn init_logging() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

/// Serves `server` over stdin and stdout on a single-threaded runtime until the client closes
/// the connection.
pub fn serve_stdio<S: ServerHandler>(server: S) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
        .context("failed to build the tokio runtime")?;

    runtime.block_on(async move {
        let service = server
            .serve(stdio_pipes())
            .await
            .context("MCP initialize handshake on stdio failed")?;
        tracing::info!("MCP session started");
        let reason = service.waiting().await.context("MCP session failed")?;
        tracing::info!(?reason, "MCP session ended");
        Ok(())
    })
}
