//! Process attempts: signalling, reading, tracing and reading the memory of another process.

use std::fs;
use std::io::Read;

use super::{Args, Outcome};

fn pid_arg(args: &Args) -> libc::pid_t {
    libc::pid_t::try_from(args.int("pid", 0)).unwrap_or(0)
}

/// Sends `signal` (SIGKILL by default) to `pid`.
pub fn kill(args: &Args) -> Outcome {
    let pid = pid_arg(args);
    let signal = libc::c_int::try_from(args.int("signal", libc::SIGKILL.into())).unwrap_or(0);
    // SAFETY: kill takes plain integers.
    let ret = unsafe { libc::kill(pid, signal) };
    Outcome::from_ret(ret.into(), format!("kill({pid}, {signal})"))
}

/// Reads up to 4 KiB of `/proc/PID/FILE`.
pub fn read_proc(args: &Args) -> Outcome {
    let pid = pid_arg(args);
    let file = args.str("file");
    let path = format!("/proc/{pid}/{file}");
    let mut content = Vec::new();
    let result =
        fs::File::open(&path).and_then(|opened| opened.take(4096).read_to_end(&mut content));
    match result {
        Ok(count) => Outcome::new("ok", format!("read {count} bytes from {path}")),
        Err(error) => Outcome::error(&error, format!("read {path}")),
    }
}

/// Attaches to `pid` with ptrace, and detaches again when that worked.
pub fn ptrace_attach(args: &Args) -> Outcome {
    let pid = pid_arg(args);
    // SAFETY: PTRACE_ATTACH takes no pointers.
    let ret = unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0usize, 0usize) };
    let outcome = Outcome::from_ret(ret, format!("ptrace(PTRACE_ATTACH, {pid})"));
    if ret == 0 {
        // SAFETY: as above.
        unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0usize, 0usize) };
    }
    outcome
}

/// Reads 8 bytes at the start of `pid`'s first mapping (or at 0x400000 when its maps are
/// unreadable) with process_vm_readv.
pub fn vm_readv(args: &Args) -> Outcome {
    let pid = pid_arg(args);
    let address = fs::read_to_string(format!("/proc/{pid}/maps"))
        .ok()
        .and_then(|maps| {
            let first = maps.lines().next()?.split('-').next()?.to_string();
            usize::from_str_radix(&first, 16).ok()
        })
        .unwrap_or(0x40_0000);
    let mut buffer = [0u8; 8];
    let local = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    let remote = libc::iovec {
        iov_base: address as *mut libc::c_void,
        iov_len: buffer.len(),
    };
    // SAFETY: local points to a live buffer of iov_len bytes. The remote address is only read by
    // the kernel in the other process.
    let ret = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    Outcome::from_ret(
        ret as libc::c_long,
        format!("process_vm_readv({pid}, {address:#x})"),
    )
}
