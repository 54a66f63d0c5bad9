//! Legitimate work that must keep working under the same seccomp policy.

use std::io::{self, Read, Write};
use std::net::ToSocketAddrs;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use super::{c_path, Args, Outcome};

/// Starts 8 threads and joins them. glibc 2.34 and later try clone3 first and fall back to clone
/// only when clone3 returns ENOSYS.
pub fn threads(_: &Args) -> Outcome {
    let mut handles = Vec::new();
    for index in 0..8u64 {
        match std::thread::Builder::new().spawn(move || index * 2) {
            Ok(handle) => handles.push(handle),
            Err(error) => return Outcome::error(&error, format!("spawn thread {index}")),
        }
    }
    let joined = handles
        .into_iter()
        .filter_map(|handle| handle.join().ok())
        .count();
    Outcome::new("ok", format!("{joined} threads joined"))
}

/// Resolves "localhost" through getaddrinfo, which reads the sandbox's /etc/hosts.
pub fn resolve_localhost(_: &Args) -> Outcome {
    match ("localhost", 80).to_socket_addrs() {
        Ok(addresses) => {
            let list: Vec<String> = addresses.map(|address| address.ip().to_string()).collect();
            Outcome::new("ok", list.join(" "))
        }
        Err(error) => Outcome::new("failed", format!("resolve localhost: {error}")),
    }
}

/// Sends 1 KiB over an AF_UNIX socketpair with SO_PASSCRED set and reads it back.
pub fn socketpair_passcred(_: &Args) -> Outcome {
    let (mut left, mut right) = match UnixStream::pair() {
        Ok(pair) => pair,
        Err(error) => return Outcome::error(&error, "socketpair"),
    };
    let enable: libc::c_int = 1;
    // SAFETY: the option value points to a c_int of the size passed.
    let ret = unsafe {
        libc::setsockopt(
            right.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PASSCRED,
            (&enable as *const libc::c_int).cast(),
            libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4),
        )
    };
    if ret < 0 {
        return Outcome::error(&io::Error::last_os_error(), "setsockopt SO_PASSCRED");
    }
    let payload = vec![0x5a_u8; 1024];
    if let Err(error) = left.write_all(&payload) {
        return Outcome::error(&error, "send 1 KiB");
    }
    let mut received = vec![0u8; 1024];
    if let Err(error) = right.read_exact(&mut received) {
        return Outcome::error(&error, "receive 1 KiB");
    }
    if received != payload {
        return Outcome::new("corrupted", "received bytes differ from the sent ones");
    }
    Outcome::new("ok", "sent and received 1024 bytes")
}

/// Calls statx on "/" and rseq with a zero length, which an allowed rseq rejects with EINVAL.
pub fn statx_rseq(_: &Args) -> Outcome {
    let root = c_path("/");
    let mut buffer = [0u8; 256];
    // SAFETY: buffer is writable and larger than struct statx (256 bytes).
    let statx = unsafe {
        libc::syscall(
            libc::SYS_statx,
            libc::AT_FDCWD,
            root.as_ptr(),
            0,
            libc::STATX_BASIC_STATS,
            buffer.as_mut_ptr(),
        )
    };
    if statx < 0 {
        return Outcome::error(&io::Error::last_os_error(), "statx /");
    }
    // SAFETY: a null area with length 0 is rejected by the kernel before any access.
    let rseq = unsafe { libc::syscall(libc::SYS_rseq, 0usize, 0u32, 0, 0u32) };
    let rseq_error = io::Error::last_os_error();
    let blocked = rseq < 0
        && matches!(
            rseq_error.raw_os_error(),
            Some(libc::ENOSYS) | Some(libc::EPERM)
        );
    if blocked {
        return Outcome::error(&rseq_error, "rseq is filtered");
    }
    Outcome::new(
        "ok",
        format!(
            "statx ok, rseq reached the kernel ({})",
            super::errno_name(&rseq_error)
        ),
    )
}
