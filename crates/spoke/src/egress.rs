//! The egress proxy's spoke side: accept the app's connections on 127.0.0.1 inside the spoke's
//! network namespace and pass each accepted socket to the hub over the egress channel (fd 4).
//!
//! The runtime reads nothing from these connections. The hub parses each request, runs its
//! checks, dials and relays, so a compromised runtime gains nothing the app does not have.

use std::io::{self, IoSlice};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::TcpListener;

/// The descriptor of the egress channel, set up by the launcher when the app has egress.
const EGRESS_FD: i32 = bulkhead_sandbox::launch::EGRESS_FD;
/// Connections the listener queues before the runtime accepts them.
const BACKLOG: u32 = 128;

/// Errors from setting up the proxy listener.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("the egress mode needs a proxy port, but the start request gives 0")]
    NoPort,
    #[error("fd {EGRESS_FD} (the egress channel) is not open")]
    NoChannel,
    #[error("cannot listen on {address}: {source}")]
    Listen { address: SocketAddr, source: io::Error },
    #[error("cannot use the egress channel: {0}")]
    Channel(io::Error),
}

/// Binds the proxy listener and starts the task that passes its connections to the hub. Call it
/// before the app starts, so that the port is the runtime's.
pub fn start(port: u32) -> Result<(), EgressError> {
    let port = u16::try_from(port).ok().filter(|port| *port != 0).ok_or(EgressError::NoPort)?;
    let channel = take_channel()?;
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listen_error = |source| EgressError::Listen { address, source };
    let socket = tokio::net::TcpSocket::new_v4().map_err(listen_error)?;
    socket.set_reuseaddr(true).map_err(listen_error)?;
    socket.bind(address).map_err(listen_error)?;
    let listener = socket.listen(BACKLOG).map_err(listen_error)?;
    tokio::spawn(pass_connections(listener, channel));
    tracing::info!(%address, "egress proxy listening");
    Ok(())
}

/// Takes fd 4 and marks it close-on-exec, so the app never inherits the channel.
fn take_channel() -> Result<AsyncFd<OwnedFd>, EgressError> {
    // SAFETY: F_GETFD only reads the descriptor flags.
    let flags = unsafe { libc::fcntl(EGRESS_FD, libc::F_GETFD) };
    if flags < 0 {
        return Err(EgressError::NoChannel);
    }
    // SAFETY: fd 4 is open, the launcher left it to this process, and nothing else here owns it.
    let channel = unsafe { OwnedFd::from_raw_fd(EGRESS_FD) };
    // SAFETY: F_SETFD and F_SETFL only change the flags of the descriptor this function owns.
    unsafe {
        if libc::fcntl(EGRESS_FD, libc::F_SETFD, flags | libc::FD_CLOEXEC) < 0 {
            return Err(EgressError::Channel(io::Error::last_os_error()));
        }
        let status = libc::fcntl(EGRESS_FD, libc::F_GETFL);
        if status < 0 || libc::fcntl(EGRESS_FD, libc::F_SETFL, status | libc::O_NONBLOCK) < 0 {
            return Err(EgressError::Channel(io::Error::last_os_error()));
        }
    }
    // SAFETY: the AsyncFd owns the OwnedFd, which stays open and returns the same descriptor from
    // as_raw_fd until the AsyncFd is dropped.
    unsafe { AsyncFd::register(channel) }.map_err(|error| EgressError::Channel(error.into()))
}

/// Accepts connections and passes each to the hub, until the hub closes the channel.
async fn pass_connections(listener: TcpListener, channel: AsyncFd<OwnedFd>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Running out of descriptors is the usual cause; the app's own limit applies.
                tracing::warn!("cannot accept an egress connection: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(error) = send_fd(&channel, stream.as_raw_fd()).await {
            tracing::error!("cannot pass an egress connection to the hub, so egress stops: {error}");
            return;
        }
        // The hub has its own copy now, so dropping this one leaves the connection open.
        drop(stream);
    }
}

/// Sends one byte with `fd` attached as SCM_RIGHTS.
async fn send_fd(channel: &AsyncFd<OwnedFd>, fd: i32) -> io::Result<()> {
    let fds = [fd];
    let data = [0u8];
    channel
        .async_io(Interest::WRITABLE, |channel| {
            let iov = [IoSlice::new(&data)];
            let message = [ControlMessage::ScmRights(&fds)];
            sendmsg::<()>(channel.as_raw_fd(), &iov, &message, MsgFlags::MSG_NOSIGNAL, None)
                .map(drop)
                .map_err(io::Error::from)
        })
        .await
}
