//! Receiving the app's proxy connections from the spoke runtime.
//!
//! The runtime accepts each connection on its proxy port inside the spoke's network namespace and
//! sends the socket to the hub over a `SOCK_SEQPACKET` socketpair with `SCM_RIGHTS`, one byte of
//! data per message. A socket keeps working after it leaves its namespace, so the hub reads and
//! writes the app's connection itself.
//!
//! The runtime shares its uid with the app, so the hub trusts nothing it receives. Every
//! descriptor is closed unless it is a connected TCP socket. Descriptors are received with
//! `MSG_CMSG_CLOEXEC`, so that none reaches a spoke the hub starts later.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{getsockname, getsockopt, sockopt, AddressFamily, SockType, SockaddrLike, SockaddrStorage};
use tokio::io::unix::AsyncFd;

/// Most descriptors taken from one message. The kernel closes any beyond this and sets
/// MSG_CTRUNC, which the hub logs.
const MAX_FDS_PER_MESSAGE: usize = 8;

/// Errors from checking a received descriptor.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("cannot inspect the descriptor: {0}")]
    Inspect(#[from] nix::Error),
    #[error("the descriptor is not a stream socket")]
    NotStream,
    #[error("the descriptor is a listening socket")]
    Listening,
    #[error("the descriptor is not an IPv4 or IPv6 socket")]
    NotInet,
    #[error("cannot use the socket: {0}")]
    Register(#[from] io::Error),
}

/// The hub's end of one spoke's connection channel.
pub struct FdReceiver {
    channel: AsyncFd<OwnedFd>,
}

impl FdReceiver {
    pub fn new(channel: OwnedFd) -> io::Result<FdReceiver> {
        set_nonblocking(channel.as_raw_fd())?;
        // SAFETY: the AsyncFd owns the OwnedFd, which stays open and returns the same descriptor
        // from as_raw_fd until the AsyncFd is dropped.
        let channel = unsafe { AsyncFd::register(channel) }.map_err(io::Error::from)?;
        Ok(FdReceiver { channel })
    }

    /// Waits for the next message and returns its descriptors, possibly none. Returns `None` once
    /// the runtime has closed its end.
    pub async fn recv(&self) -> io::Result<Option<Vec<OwnedFd>>> {
        loop {
            let mut ready = self.channel.readable().await?;
            match ready.try_io(|channel| receive_message(channel.as_raw_fd())) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

/// Receives one message with `recvmsg` and takes ownership of every descriptor in it, even when
/// the control data was truncated, so that none leaks.
fn receive_message(channel: RawFd) -> io::Result<Option<Vec<OwnedFd>>> {
    let mut data = [0u8; 16];
    let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
    let fd_bytes = u32::try_from(MAX_FDS_PER_MESSAGE * std::mem::size_of::<libc::c_int>()).unwrap_or(u32::MAX);
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(fd_bytes) } as usize;
    // u64 elements give the buffer the alignment of struct cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];

    // SAFETY: msghdr is a plain C struct for which all zero bytes are a valid value.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_iov = &mut iov;
    header.msg_iovlen = 1;
    header.msg_control = control.as_mut_ptr().cast();
    header.msg_controllen = space;

    // SAFETY: `header` points at `iov` and `control`, which live until the call returns and are
    // as large as the lengths given.
    let received = unsafe { libc::recvmsg(channel, &mut header, libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT) };
    if received < 0 {
        return Err(io::Error::last_os_error());
    }

    let mut fds = Vec::new();
    // SAFETY: the kernel filled `control` up to msg_controllen with well-formed cmsghdr entries,
    // and CMSG_FIRSTHDR and CMSG_NXTHDR stay within that length. Each SCM_RIGHTS entry contains
    // descriptors the kernel just installed in this process, which nothing else owns.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let payload = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let first = libc::CMSG_DATA(cmsg).cast::<libc::c_int>();
                for index in 0..payload / std::mem::size_of::<libc::c_int>() {
                    let raw = std::ptr::read_unaligned(first.add(index));
                    fds.push(OwnedFd::from_raw_fd(raw));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&header, cmsg);
        }
    }
    if header.msg_flags & libc::MSG_CTRUNC != 0 {
        tracing::warn!(
            kept = fds.len(),
            "the spoke sent more than {MAX_FDS_PER_MESSAGE} descriptors in one message; the kernel closed the rest"
        );
    }
    if received == 0 && fds.is_empty() {
        return Ok(None);
    }
    Ok(Some(fds))
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL and F_SETFL only read and change the flags of an open descriptor.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Turns a received descriptor into a tokio TCP stream after checking that it is a connected
/// IPv4 or IPv6 stream socket. The descriptor is closed on every error.
pub fn into_tcp_stream(fd: OwnedFd) -> Result<tokio::net::TcpStream, ReceiveError> {
    if getsockopt(&fd, sockopt::SockType)? != SockType::Stream {
        return Err(ReceiveError::NotStream);
    }
    if getsockopt(&fd, sockopt::AcceptConn)? {
        return Err(ReceiveError::Listening);
    }
    let local: SockaddrStorage = getsockname(fd.as_raw_fd())?;
    if !matches!(local.family(), Some(AddressFamily::Inet | AddressFamily::Inet6)) {
        return Err(ReceiveError::NotInet);
    }
    let stream = std::net::TcpStream::from(fd);
    stream.set_nonblocking(true)?;
    Ok(tokio::net::TcpStream::from_std(stream)?)
}
