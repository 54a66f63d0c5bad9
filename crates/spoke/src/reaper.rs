//! PID 1 duties: reap every child, and report the app's own exit status.
//!
//! Orphans inside the spoke's PID namespace are reparented to the runtime, so it must reap them or the
//! process table fills. The reaper is also the only place that waits for the app: a second waiter would
//! race it and could turn the app's exit code into a lost status.

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// The app's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppExit {
    Exited(i32),
    Signaled(i32),
}

impl AppExit {
    /// Returns the runtime's own exit code for this app exit: the app's code, or 128 plus the signal number,
    /// as shells report it.
    pub fn as_exit_code(self) -> u8 {
        let code = match self {
            AppExit::Exited(code) => code,
            AppExit::Signaled(signal) => 128 + signal,
        };
        u8::try_from(code & 0xff).unwrap_or(1)
    }
}

impl std::fmt::Display for AppExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppExit::Exited(code) => write!(f, "exited with code {code}"),
            AppExit::Signaled(signal) => {
                let name = nix::sys::signal::Signal::try_from(*signal)
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|_| format!("signal {signal}"));
                write!(f, "was killed by {name}")
            }
        }
    }
}

/// Watches SIGCHLD and reaps every exited child. The app's pid is sent through `app_pid` once it is
/// known; its status is published on the returned channel.
pub struct Reaper {
    app_pid: watch::Sender<Option<Pid>>,
    exit: watch::Receiver<Option<AppExit>>,
}

impl Reaper {
    /// Installs the SIGCHLD handler and starts the reaping task. Call it before spawning the app, so
    /// that no SIGCHLD is missed.
    pub fn start() -> std::io::Result<Reaper> {
        let mut sigchld = signal(SignalKind::child())?;
        let (pid_tx, pid_rx) = watch::channel(None::<Pid>);
        let (exit_tx, exit_rx) = watch::channel(None::<AppExit>);
        tokio::spawn(async move {
            loop {
                reap_all(&pid_rx, &exit_tx);
                if sigchld.recv().await.is_none() {
                    break;
                }
            }
        });
        Ok(Reaper { app_pid: pid_tx, exit: exit_rx })
    }

    /// Records the app's pid, so its exit is reported instead of discarded as an orphan's.
    pub fn set_app_pid(&self, pid: Pid) {
        self.app_pid.send_replace(Some(pid));
    }

    /// Returns a receiver that turns `Some` once the app has exited.
    pub fn exit(&self) -> watch::Receiver<Option<AppExit>> {
        self.exit.clone()
    }
}

/// Reaps every exited child without blocking. The runtime is single-threaded and records the app's pid
/// right after spawning it with no await in between, so this never runs between the two.
fn reap_all(app_pid: &watch::Receiver<Option<Pid>>, exit: &watch::Sender<Option<AppExit>>) {
    loop {
        let status = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
            Ok(status) => status,
            Err(Errno::EINTR) => continue,
            Err(error) => {
                tracing::warn!(%error, "waitpid failed in the reaper");
                break;
            }
        };
        let (pid, result) = match status {
            WaitStatus::Exited(pid, code) => (pid, AppExit::Exited(code)),
            WaitStatus::Signaled(pid, signal, _) => (pid, AppExit::Signaled(signal as i32)),
            _ => continue,
        };
        if *app_pid.borrow() == Some(pid) {
            exit.send_replace(Some(result));
        }
    }
}
