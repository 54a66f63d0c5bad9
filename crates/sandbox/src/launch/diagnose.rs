//! Explains a failed clone into new namespaces by trying each namespace type on its own.
//!
//! The probes only diagnose: each one starts a child that exits at once. The launch itself never
//! retries with fewer namespaces.

use nix::errno::Errno;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

/// Namespace types with their clone flag and the sysctl that limits how many may exist.
const NAMESPACE_TYPES: [(libc::c_int, &str, &str); 7] = [
    (libc::CLONE_NEWUSER, "user", "max_user_namespaces"),
    (libc::CLONE_NEWNS, "mount", "max_mnt_namespaces"),
    (libc::CLONE_NEWPID, "pid", "max_pid_namespaces"),
    (libc::CLONE_NEWNET, "network", "max_net_namespaces"),
    (libc::CLONE_NEWIPC, "ipc", "max_ipc_namespaces"),
    (libc::CLONE_NEWUTS, "uts", "max_uts_namespaces"),
    (libc::CLONE_NEWCGROUP, "cgroup", "max_cgroup_namespaces"),
];

/// Returns a message for a clone that failed with `errno`, naming the namespace types that
/// cannot be created and the limits involved.
pub(super) fn describe_clone_failure(errno: Errno) -> String {
    let mut message = format!(
        "clone into new user, mount, pid, network, ipc, uts and cgroup namespaces failed: {errno}"
    );
    if !matches!(
        errno,
        Errno::EINVAL | Errno::EPERM | Errno::ENOSPC | Errno::EUSERS
    ) {
        return message;
    }

    let mut unavailable = Vec::new();
    for (flag, name, sysctl) in NAMESPACE_TYPES {
        // Other namespace types are probed inside a new user namespace, as the launch creates them.
        let flags = if flag == libc::CLONE_NEWUSER {
            flag
        } else {
            flag | libc::CLONE_NEWUSER
        };
        if let Err(probe_errno) = probe(flags) {
            let limit = std::fs::read_to_string(format!("/proc/sys/user/{sysctl}"))
                .map(|text| text.trim().to_string())
                .unwrap_or_else(|_| "unreadable".to_string());
            unavailable.push(format!(
                "{name} ({probe_errno}; /proc/sys/user/{sysctl} is {limit})"
            ));
        }
    }

    if unavailable.is_empty() {
        message.push_str(
            "; each namespace type can be created on its own, so a limit reached by this \
             combination or a concurrent start is the likely cause",
        );
    } else {
        message.push_str("; unavailable namespace types: ");
        message.push_str(&unavailable.join(", "));
        if unavailable.iter().any(|entry| entry.starts_with("user ")) {
            message.push_str(
                "; enable user namespaces in the kernel, and in the seccomp profile of any \
                 container runtime that runs bulkhead",
            );
        }
    }
    message
}

/// Clones a child with `flags` that exits at once, and reaps it.
fn probe(flags: libc::c_int) -> Result<(), Errno> {
    let flags = libc::c_ulong::from((flags | libc::SIGCHLD).unsigned_abs());
    // SAFETY: with a null stack pointer clone behaves like fork. The child only calls _exit, which
    // is async-signal-safe, so the single-threaded launcher's state does not matter to it.
    let rc = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match Errno::result(rc)? {
        // SAFETY: _exit ends the probe child without running the parent's destructors.
        0 => unsafe { libc::_exit(0) },
        pid => {
            let pid = Pid::from_raw(libc::pid_t::try_from(pid).unwrap_or(libc::pid_t::MAX));
            let _ = waitpid(pid, None);
            Ok(())
        }
    }
}
