//! The end of a spoke, decoded from the launcher's exit status and the cgroup's OOM counter.

use std::process::ExitStatus;

/// The launcher's exit code when the spoke could not be set up.
const LAUNCH_FAILURE_CODE: i32 = 125;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpokeExit {
    /// The app exited on its own with this code.
    Exited(i32),
    /// The app, or the spoke runtime, was killed by this signal.
    Signaled(i32),
    /// The kernel's OOM killer ended a process of the spoke at its memory limit.
    OutOfMemory { limit_bytes: u64 },
    /// The spoke runtime failed. Its log, in the hub's log, gives the reason.
    RuntimeFailed,
    /// The hub stopped the spoke on purpose.
    Stopped,
}

impl SpokeExit {
    /// Decodes the launcher's status. The launcher exits with the runtime's code, and the runtime with
    /// the app's code or 128 plus the app's signal, as shells do.
    pub fn from_status(status: ExitStatus, oom_kills: u64, limit_bytes: u64) -> SpokeExit {
        use std::os::unix::process::ExitStatusExt;
        if oom_kills > 0 {
            return SpokeExit::OutOfMemory { limit_bytes };
        }
        if let Some(signal) = status.signal() {
            return SpokeExit::Signaled(signal);
        }
        match status.code() {
            Some(LAUNCH_FAILURE_CODE) => SpokeExit::RuntimeFailed,
            Some(code) if code > 128 => SpokeExit::Signaled(code - 128),
            Some(code) => SpokeExit::Exited(code),
            None => SpokeExit::RuntimeFailed,
        }
    }

    /// Returns a short reason for scripts: "oom", "signal", "exit", "runtime" or "stopped".
    pub fn reason(&self) -> &'static str {
        match self {
            SpokeExit::Exited(_) => "exit",
            SpokeExit::Signaled(_) => "signal",
            SpokeExit::OutOfMemory { .. } => "oom",
            SpokeExit::RuntimeFailed => "runtime",
            SpokeExit::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for SpokeExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpokeExit::Exited(code) => write!(f, "exited with code {code}"),
            SpokeExit::Signaled(signal) => {
                let name = nix::sys::signal::Signal::try_from(*signal)
                    .map(|signal| signal.as_str().to_string())
                    .unwrap_or_else(|_| format!("signal {signal}"));
                write!(f, "was killed by {name}")
            }
            SpokeExit::OutOfMemory { limit_bytes } => write!(
                f,
                "was killed for running out of memory (oom) at its limit of {limit_bytes} bytes"
            ),
            SpokeExit::RuntimeFailed => write!(f, "stopped because its spoke runtime failed"),
            SpokeExit::Stopped => write!(f, "was stopped by the hub"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn exit_code_decoding() {
        assert_eq!(SpokeExit::from_status(ExitStatus::from_raw(7 << 8), 0, 0), SpokeExit::Exited(7));
        assert_eq!(SpokeExit::from_status(ExitStatus::from_raw(137 << 8), 0, 0), SpokeExit::Signaled(9));
        assert_eq!(SpokeExit::from_status(ExitStatus::from_raw(9), 0, 0), SpokeExit::Signaled(9));
        assert_eq!(SpokeExit::from_status(ExitStatus::from_raw(125 << 8), 0, 0), SpokeExit::RuntimeFailed);
        assert_eq!(
            SpokeExit::from_status(ExitStatus::from_raw(137 << 8), 1, 64),
            SpokeExit::OutOfMemory { limit_bytes: 64 }
        );
    }

    #[test]
    fn exit_messages_name_the_signal() {
        assert_eq!(SpokeExit::Signaled(9).to_string(), "was killed by SIGKILL");
        assert_eq!(SpokeExit::OutOfMemory { limit_bytes: 1 }.reason(), "oom");
    }
}
