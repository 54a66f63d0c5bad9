//! Parent side of the clone: namespaces, id maps, the setup handshake, and the wait loop.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::child::{self, ChildPipes, ChildPlan};
use super::diagnose;
use super::start::FORWARDED_SIGNALS;
use super::{LaunchError, LaunchSpec, SETUP_FAILURE_EXIT_CODE};

/// Namespaces of a spoke: user, mount, PID, network, IPC, UTS and cgroup.
pub(super) const NAMESPACE_FLAGS: libc::c_int = libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP;

/// The runtime after a successful exec.
#[derive(Debug)]
pub(crate) struct RunningChild {
    pid: Pid,
    /// Write end of the sync pipe, held open so the child can tell the launcher is alive.
    _sync: OwnedFd,
}

/// Kills and reaps the child unless setup completed, so a failed launch leaves no process behind.
struct ChildGuard {
    pid: Pid,
    armed: bool,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

/// Clones the child into new namespaces, writes its id maps, releases it, and waits until it
/// either executed the runtime (EOF on the error pipe) or reported a failure.
pub(super) fn spawn(plan: &ChildPlan, spec: &LaunchSpec) -> Result<RunningChild, LaunchError> {
    let (sync_read, sync_write) = pipe("sync")?;
    let (error_read, error_write) = pipe("error")?;
    let pipes = ChildPipes {
        sync: sync_read.as_raw_fd(),
        error: error_write.as_raw_fd(),
    };

    let flags = libc::c_ulong::from((NAMESPACE_FLAGS | libc::SIGCHLD).unsigned_abs());
    // SAFETY: with a null stack pointer clone behaves like fork and the child runs on a copy of
    // this stack. The launcher is single-threaded (checked in `start`), so the copy holds no lock
    // of another thread, and `child::run` never returns into the parent's frames.
    let rc = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    let pid = match Errno::result(rc) {
        Ok(0) => child::run(plan, pipes),
        Ok(pid) => Pid::from_raw(libc::pid_t::try_from(pid).unwrap_or(libc::pid_t::MAX)),
        Err(errno) => return Err(LaunchError::Clone(diagnose::describe_clone_failure(errno))),
    };
    let mut guard = ChildGuard { pid, armed: true };
    drop(sync_read);
    drop(error_write);

    write_id_maps(pid, spec)?;
    release(&sync_write)?;
    let message = read_to_end(error_read)?;
    if !message.is_empty() {
        return Err(LaunchError::Setup(
            String::from_utf8_lossy(&message).into_owned(),
        ));
    }
    guard.armed = false;
    Ok(RunningChild {
        pid,
        _sync: sync_write,
    })
}

impl RunningChild {
    /// Returns the runtime's pid in the host PID namespace.
    pub(crate) fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Waits for the runtime, forwarding SIGTERM, SIGINT and SIGHUP to it. Returns its exit code,
    /// or 128 + the signal number when a signal killed it.
    pub(crate) fn wait_forwarding_signals(self) -> i32 {
        let mut set = SigSet::empty();
        for signal in FORWARDED_SIGNALS {
            set.add(signal);
        }
        set.add(Signal::SIGCHLD);
        loop {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => return code,
                Ok(WaitStatus::Signaled(_, signal, _)) => return 128 + signal as i32,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(errno) => {
                    tracing::error!(pid = self.pid.as_raw(), error = %errno, "cannot wait for the spoke runtime");
                    return SETUP_FAILURE_EXIT_CODE;
                }
            }
            // The signals are blocked, so one that arrives between waitpid and here stays pending
            // and sigwait returns it at once.
            match set.wait() {
                Ok(Signal::SIGCHLD) | Err(_) => {}
                Ok(signal) => {
                    tracing::info!(pid = self.pid.as_raw(), %signal, "forwarding signal to the spoke runtime");
                    if let Err(errno) = kill(self.pid, signal) {
                        tracing::warn!(pid = self.pid.as_raw(), %signal, error = %errno, "cannot forward signal");
                    }
                }
            }
        }
    }
}

fn pipe(name: &'static str) -> Result<(OwnedFd, OwnedFd), LaunchError> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    Errno::result(rc).map_err(|errno| LaunchError::CreatePipe {
        name,
        source: errno.into(),
    })?;
    // SAFETY: pipe2 just returned both descriptors, and nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Maps uid and gid 0 inside to the spec's host ids. "deny" goes to setgroups first, because an
/// unprivileged gid_map writer must give up setgroups(2) and the child never needs it.
fn write_id_maps(pid: Pid, spec: &LaunchSpec) -> Result<(), LaunchError> {
    let files = [
        ("setgroups", "deny".to_string()),
        ("uid_map", format!("0 {} 1\n", spec.host_uid)),
        ("gid_map", format!("0 {} 1\n", spec.host_gid)),
    ];
    for (name, contents) in files {
        let path = PathBuf::from(format!("/proc/{pid}/{name}"));
        std::fs::write(&path, contents)
            .map_err(|source| LaunchError::WriteIdMap { path, source })?;
    }
    Ok(())
}

fn release(sync_write: &OwnedFd) -> Result<(), LaunchError> {
    loop {
        // SAFETY: the buffer is a valid one-byte slice.
        let written = unsafe { libc::write(sync_write.as_raw_fd(), b"x".as_ptr().cast(), 1) };
        match Errno::result(written) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(LaunchError::ReleaseChild(errno.into())),
        }
    }
}

fn read_to_end(error_read: OwnedFd) -> Result<Vec<u8>, LaunchError> {
    let mut message = Vec::new();
    std::fs::File::from(error_read)
        .read_to_end(&mut message)
        .map_err(LaunchError::ReadErrorPipe)?;
    Ok(message)
}
