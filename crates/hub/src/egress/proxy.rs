//! The hub's side of one egress spoke's proxy: receive each connection the runtime accepted, read
//! its request head, run the checks, dial, respond, and relay while counting bytes.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::allowlist::AllowEntry;
use super::check::{check, Policy, SystemResolver};
use super::host::shown;
use super::receive::{into_tcp_stream, FdReceiver};
use super::relay::{Counted, Direction, EgressStats};
use super::request::{self, error_response, Kind, RequestError, CONNECT_ESTABLISHED};
use crate::audit::{fields, AuditLog};
use crate::config::EgressConfig;

/// Maximum number of connections beyond the limit that wait for their 429 response at once.
const MAX_REJECTING: u32 = 16;
/// Time a connection beyond the limit has to send its head before it gets the response.
const REJECT_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// Buffer size of each relay direction. tokio's default of 8 KiB costs throughput on bulk transfers.
const RELAY_BUFFER: usize = 256 * 1024;

/// Everything the proxy of one spoke needs.
pub struct ProxyContext {
    pub app: String,
    pub allow: Vec<AllowEntry>,
    pub max_connections: u32,
    pub config: EgressConfig,
    pub audit: Arc<AuditLog>,
    pub stats: Arc<EgressStats>,
}

/// Starts the task that serves one spoke's proxy connections until the runtime closes `channel`,
/// which it does when the spoke exits. Connections still open then are closed.
pub fn spawn(channel: OwnedFd, context: ProxyContext) -> std::io::Result<()> {
    let receiver = FdReceiver::new(channel)?;
    tokio::spawn(serve(receiver, Arc::new(context)));
    Ok(())
}

async fn serve(receiver: FdReceiver, context: Arc<ProxyContext>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            message = receiver.recv() => match message {
                Ok(Some(fds)) => {
                    for fd in fds {
                        admit(fd, &context, &mut connections);
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::error!(app = %context.app, "cannot receive proxy connections from the spoke: {error}");
                    break;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    tracing::debug!(app = %context.app, open = connections.len(), "egress channel closed; closing the app's connections");
    connections.shutdown().await;
}

/// Starts serving one received descriptor, or closes it with a refusal.
fn admit(fd: OwnedFd, context: &Arc<ProxyContext>, connections: &mut JoinSet<()>) {
    let stream = match into_tcp_stream(fd) {
        Ok(stream) => stream,
        Err(error) => {
            tracing::warn!(app = %context.app, "the spoke sent a descriptor the proxy cannot use: {error}");
            context.stats.count_refused();
            return;
        }
    };
    let Some(open) = context.stats.try_open(context.max_connections) else {
        reject_over_limit(stream, context, connections);
        return;
    };
    let context = Arc::clone(context);
    connections.spawn(async move {
        let _open = open;
        handle(stream, &context).await;
    });
}

/// Responds 429 to a connection beyond the app's limit. The head is read first, because closing
/// a socket with unread data sends a reset that can overtake the response. At most
/// `MAX_REJECTING` such responses are pending at once, and connections beyond that are closed.
fn reject_over_limit(mut stream: TcpStream, context: &Arc<ProxyContext>, connections: &mut JoinSet<()>) {
    let reason = format!(
        "the app has {} proxy connections open, its maximum; raise [network] max_connections in the manifest",
        context.max_connections
    );
    let Some(rejecting) = context.stats.try_reject(MAX_REJECTING) else {
        refused(context, "", "", 429, &reason);
        return;
    };
    let context = Arc::clone(context);
    connections.spawn(async move {
        let _rejecting = rejecting;
        let _ = request::read_head(&mut stream, REJECT_READ_TIMEOUT).await;
        answer_refusal(&mut stream, &context, "", "", 429, "Too Many Requests", &reason).await;
    });
}

/// Serves one connection from request head to close.
async fn handle(mut app: TcpStream, context: &ProxyContext) {
    let (head, early_data) = match request::read_head(&mut app, context.config.header_timeout).await {
        Ok(read) => read,
        Err(RequestError::Closed) => return,
        Err(error) => {
            let (status, phrase) = match error {
                RequestError::Timeout(_) => (408, "Request Timeout"),
                RequestError::TooLarge => (431, "Request Header Fields Too Large"),
                _ => (400, "Bad Request"),
            };
            answer_refusal(&mut app, context, "", "", status, phrase, &error.to_string()).await;
            return;
        }
    };
    let request = match request::parse(&head) {
        Ok(request) => request,
        Err(error) => {
            answer_refusal(&mut app, context, "", "", 400, "Bad Request", &error.to_string()).await;
            return;
        }
    };
    let requested = shown(&request.authority);
    let policy = Policy { allow: &context.allow, pinned: &context.config.hosts };
    let resolver = SystemResolver { timeout: context.config.connect_timeout };
    let checked = match check(&policy, &request.authority, request.default_port, &resolver).await {
        Ok(checked) => checked,
        Err(refusal) => {
            let (status, phrase) = refusal.status();
            answer_refusal(&mut app, context, &request.method, &requested, status, phrase, &refusal.to_string()).await;
            return;
        }
    };
    let (mut upstream, address) = match dial(&checked.addresses, context.config.connect_timeout).await {
        Ok(dialed) => dialed,
        Err(reason) => {
            let reason = format!("cannot connect to {}: {reason}", checked.target);
            answer_refusal(&mut app, context, &request.method, &requested, 502, "Bad Gateway", &reason).await;
            return;
        }
    };
    let _ = app.set_nodelay(true);
    let _ = upstream.set_nodelay(true);

    // Bytes the hub writes upstream before the relay: the rewritten head and what followed it.
    let mut sent_before_relay = early_data.len();
    let opened = match &request.kind {
        Kind::Connect => app.write_all(CONNECT_ESTABLISHED).await,
        Kind::Forward { head } => {
            sent_before_relay += head.len();
            upstream.write_all(head).await
        }
    };
    let opened = match opened {
        Ok(()) => upstream.write_all(&early_data).await,
        Err(error) => Err(error),
    };
    if let Err(error) = opened {
        tracing::debug!(app = %context.app, target = %checked.target, "the connection closed while opening: {error}");
        return;
    }

    context.stats.count_connection();
    let sent_before_relay = u64::try_from(sent_before_relay).unwrap_or(u64::MAX);
    context.stats.count_sent(sent_before_relay);
    let host = checked.target.host.to_string();
    let record = fields([
        ("app", Value::from(context.app.as_str())),
        ("method", Value::from(request.method.as_str())),
        ("host", Value::from(host.as_str())),
        ("port", Value::from(checked.target.port)),
        ("address", Value::from(address.to_string())),
    ]);
    context.audit.note("egress_open", record).await;

    let close = CloseRecord {
        context,
        host,
        port: checked.target.port,
        address,
        started: Instant::now(),
        sent: Arc::new(AtomicU64::new(sent_before_relay)),
        received: Arc::new(AtomicU64::new(0)),
    };
    let mut app = Counted::new(app, Direction::Sent, Arc::clone(&close.sent), Arc::clone(&context.stats));
    let mut upstream = Counted::new(upstream, Direction::Received, Arc::clone(&close.received), Arc::clone(&context.stats));
    if let Err(error) = tokio::io::copy_bidirectional_with_sizes(&mut app, &mut upstream, RELAY_BUFFER, RELAY_BUFFER).await {
        tracing::debug!(app = %context.app, target = %checked.target, "relay ended with an error: {error}");
    }
}

/// Dials the checked addresses in order and returns the first connection.
async fn dial(addresses: &[SocketAddr], timeout: Duration) -> Result<(TcpStream, SocketAddr), String> {
    let mut last_error = String::from("no address to dial");
    for address in addresses {
        match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => return Ok((stream, *address)),
            Ok(Err(error)) => last_error = format!("{address}: {error}"),
            Err(_) => last_error = format!("{address}: timed out after {timeout:?}"),
        }
    }
    Err(last_error)
}

/// Sends a refusal with its status and the reason as the body, and records it.
async fn answer_refusal(
    app: &mut TcpStream,
    context: &ProxyContext,
    method: &str,
    host: &str,
    status: u16,
    phrase: &str,
    reason: &str,
) {
    refused(context, method, host, status, reason);
    let response = error_response(status, phrase, reason);
    let written = tokio::time::timeout(context.config.header_timeout, app.write_all(&response)).await;
    if !matches!(written, Ok(Ok(()))) {
        tracing::debug!(app = %context.app, status, "cannot send the refusal to the app");
    }
    let _ = app.shutdown().await;
}

/// Counts, logs and audits a refused request.
fn refused(context: &ProxyContext, method: &str, host: &str, status: u16, reason: &str) {
    context.stats.count_refused();
    tracing::info!(app = %context.app, method, host, status, "egress request rejected: {reason}");
    let record = fields([
        ("app", Value::from(context.app.as_str())),
        ("method", Value::from(method)),
        ("host", Value::from(host)),
        ("status", Value::from(status)),
        ("reason", Value::from(reason)),
    ]);
    if let Err(error) = context.audit.write("egress_refused", record) {
        tracing::error!(app = %context.app, "{error}");
    }
}

/// Writes the `egress_close` record when the relay ends, also when the task is aborted because the
/// spoke exited.
struct CloseRecord<'a> {
    context: &'a ProxyContext,
    host: String,
    port: u16,
    address: SocketAddr,
    started: Instant,
    sent: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
}

impl Drop for CloseRecord<'_> {
    fn drop(&mut self) {
        let record = fields([
            ("app", Value::from(self.context.app.as_str())),
            ("host", Value::from(self.host.as_str())),
            ("port", Value::from(self.port)),
            ("address", Value::from(self.address.to_string())),
            ("bytes_sent", Value::from(self.sent.load(Ordering::Relaxed))),
            ("bytes_received", Value::from(self.received.load(Ordering::Relaxed))),
            ("duration_ms", Value::from(u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX))),
        ]);
        if let Err(error) = self.context.audit.write("egress_close", record) {
            tracing::error!(app = %self.context.app, "{error}");
        }
    }
}
