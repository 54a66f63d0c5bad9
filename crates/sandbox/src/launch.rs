//! The spoke launcher: clones the spoke runtime into new namespaces and waits for it.
//!
//! The hub runs `bulkhead-spoke launch` as a fresh single-threaded process with stdin carrying a
//! [`LaunchSpec`] as JSON, stdout a pipe, stderr the spoke's log pipe, fd 3 the spoke's end of the
//! hub channel, fd 4 the spoke's end of the egress channel when the spec sets `egress_channel`, and an
//! empty environment.
//!
//! On success the launcher writes one line `{"pid":N}` (N is the runtime's host pid), then closes
//! stdout and its own copy of the channel. It waits for the runtime, forwards SIGTERM, SIGINT and
//! SIGHUP to it, and exits with the runtime's exit code, or 128 + the signal number when a signal
//! killed it. On failure it writes one line `{"error":"<message>"}` and exits with
//! [`SETUP_FAILURE_EXIT_CODE`].

mod child;
mod diagnose;
mod parent;
mod start;

use std::io::{self, Read, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::fds::FdError;
use crate::mounts::{self, MountError};
use crate::privileges::PrivilegeError;

/// Exit code of the launcher when the spoke could not be started.
pub const SETUP_FAILURE_EXIT_CODE: i32 = 125;

/// Descriptor of the hub channel, inherited by the launcher and passed on to the runtime.
pub const CHANNEL_FD: i32 = 3;

/// Descriptor of the egress channel, on which the runtime passes the app's proxy connections to
/// the hub. Present only when [`LaunchSpec::egress_channel`] is set.
pub const EGRESS_FD: i32 = 4;

/// Maximum hostname length of Linux (HOST_NAME_MAX).
const HOST_NAME_MAX: usize = 64;

/// Everything the launcher needs to start one spoke.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaunchSpec {
    /// App name, used for the hostname "bulkhead-<app>" and in messages.
    pub app: String,
    /// Unprivileged host uid that uid 0 inside the sandbox maps to. Must not be 0.
    pub host_uid: u32,
    /// Unprivileged host gid that gid 0 inside the sandbox maps to. Must not be 0.
    pub host_gid: u32,
    /// The sandbox's filesystem.
    pub mounts: mounts::MountPlan,
    /// cgroup.procs files the launcher writes its own pid into before the clone, so the runtime
    /// starts inside those cgroups.
    pub cgroup_procs: Vec<PathBuf>,
    /// argv of the runtime executed inside, e.g. `["bulkhead-spoke", "serve"]`.
    pub runtime_args: Vec<String>,
    /// The runtime's whole environment.
    pub runtime_env: Vec<(String, String)>,
    /// Whether fd [`EGRESS_FD`] carries the egress channel, which the runtime then inherits.
    #[serde(default)]
    pub egress_channel: bool,
}

/// The binary the child executes as the spoke runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecTarget {
    /// The launcher's own executable, /proc/self/exe (production).
    CurrentExe,
    /// A host path, opened without following symlinks before the clone (tests).
    Path(PathBuf),
}

/// Errors that stop the launcher before the runtime runs.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("read the launch spec from stdin: {0}")]
    ReadSpec(#[source] io::Error),
    #[error("parse the launch spec: {0}")]
    ParseSpec(#[source] serde_json::Error),
    #[error("app name {app:?}: {reason}")]
    InvalidAppName { app: String, reason: &'static str },
    #[error(
        "host_{kind} is 0, which would map the sandbox to host root; use an unprivileged {kind}"
    )]
    RootHostId { kind: &'static str },
    #[error("runtime_args is empty; name at least the program")]
    EmptyRuntimeArgs,
    #[error("{field}[{index}] contains a NUL byte")]
    NulByte { field: &'static str, index: usize },
    #[error("runtime_env[{index}] has the invalid name {name:?}; names are non-empty and contain no '='")]
    InvalidEnvName { index: usize, name: String },
    #[error(transparent)]
    Plan(#[from] MountError),
    #[error(transparent)]
    Privilege(#[from] PrivilegeError),
    #[error(transparent)]
    Fds(#[from] FdError),
    #[error("the parent process exited before the launcher set its parent-death signal")]
    ParentDied,
    #[error("fd {CHANNEL_FD} (the hub channel) is not open; start the launcher with the channel as fd {CHANNEL_FD}")]
    ChannelNotOpen,
    #[error("fd {EGRESS_FD} (the egress channel) is not open, but the spec sets egress_channel; start the launcher with the channel as fd {EGRESS_FD}")]
    EgressChannelNotOpen,
    #[error("list threads in /proc/self/task: {0}")]
    CountThreads(#[source] io::Error),
    #[error("the launcher runs {count} threads; it must be single-threaded to clone safely")]
    MultiThreaded { count: usize },
    #[error("write pid into {path}: {source}")]
    JoinCgroup { path: PathBuf, source: io::Error },
    #[error("open runtime {path}: {source}")]
    OpenRuntime { path: PathBuf, source: io::Error },
    #[error("open runtime {path}: contains a symlink; name the resolved path")]
    RuntimeSymlink { path: PathBuf },
    #[error("open /dev/null: {0}")]
    OpenDevNull(#[source] io::Error),
    #[error("block forwarded signals: {0}")]
    BlockSignals(#[source] io::Error),
    #[error("create {name} pipe: {source}")]
    CreatePipe {
        name: &'static str,
        source: io::Error,
    },
    #[error("{0}")]
    Clone(String),
    #[error("write {path}: {source}")]
    WriteIdMap { path: PathBuf, source: io::Error },
    #[error("release the child through the sync pipe: {0}")]
    ReleaseChild(#[source] io::Error),
    #[error("read the child's error pipe: {0}")]
    ReadErrorPipe(#[source] io::Error),
    #[error("spoke setup failed: {0}")]
    Setup(String),
}

impl LaunchSpec {
    /// Checks the spec, including the mount plan, before anything is changed.
    pub fn validate(&self) -> Result<(), LaunchError> {
        let invalid_app = |reason| LaunchError::InvalidAppName {
            app: self.app.clone(),
            reason,
        };
        if self.app.is_empty() {
            return Err(invalid_app("empty; name the app"));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if !self.app.chars().all(allowed) {
            return Err(invalid_app(
                "use only ASCII letters, digits, '-', '_' and '.'",
            ));
        }
        if self.host_uid == 0 {
            return Err(LaunchError::RootHostId { kind: "uid" });
        }
        if self.host_gid == 0 {
            return Err(LaunchError::RootHostId { kind: "gid" });
        }
        if self.runtime_args.is_empty() {
            return Err(LaunchError::EmptyRuntimeArgs);
        }
        if let Some(index) = self.runtime_args.iter().position(|a| a.contains('\0')) {
            return Err(LaunchError::NulByte {
                field: "runtime_args",
                index,
            });
        }
        for (index, (name, value)) in self.runtime_env.iter().enumerate() {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return Err(LaunchError::InvalidEnvName {
                    index,
                    name: name.clone(),
                });
            }
            if value.contains('\0') {
                return Err(LaunchError::NulByte {
                    field: "runtime_env",
                    index,
                });
            }
        }
        self.mounts.validate()?;
        Ok(())
    }

    /// Returns the sandbox's hostname, "bulkhead-<app>", cut to the 64 bytes Linux allows.
    pub fn hostname(&self) -> String {
        let mut hostname = format!("bulkhead-{}", self.app);
        let mut length = hostname.len().min(HOST_NAME_MAX);
        while !hostname.is_char_boundary(length) {
            length -= 1;
        }
        hostname.truncate(length);
        hostname
    }
}

/// Runs the launcher for `spec`, executing the launcher's own binary as the runtime. Called from
/// `bulkhead-spoke launch` in a fresh single-threaded process whose fd 3 is the hub channel.
/// Returns the process exit code to use.
pub fn run_launcher(spec: &LaunchSpec) -> i32 {
    launch_with_exec(spec, &ExecTarget::CurrentExe)
}

/// Reads a [`LaunchSpec`] as JSON from stdin to EOF and runs [`run_launcher`]. A spec that cannot
/// be read is reported with the launcher protocol's error line. Returns the process exit code.
pub fn run_launcher_from_stdin() -> i32 {
    let mut text = String::new();
    let spec = io::stdin()
        .read_to_string(&mut text)
        .map_err(LaunchError::ReadSpec)
        .and_then(|_| serde_json::from_str::<LaunchSpec>(&text).map_err(LaunchError::ParseSpec));
    match spec {
        Ok(spec) => run_launcher(&spec),
        Err(err) => report_failure(&err),
    }
}

/// Runs the launcher with an explicit runtime binary. [`run_launcher`] passes
/// [`ExecTarget::CurrentExe`], and tests pass a host path. Returns the process exit code.
pub fn launch_with_exec(spec: &LaunchSpec, exec: &ExecTarget) -> i32 {
    match start::start(spec, exec) {
        Ok(child) => {
            tracing::info!(app = %spec.app, pid = child.pid(), "spoke runtime started");
            if let Err(err) = write_line(&format!("{{\"pid\":{}}}", child.pid())) {
                tracing::warn!(app = %spec.app, error = %err, "cannot write the pid line to stdout");
            }
            start::release_stdio(spec.egress_channel);
            let code = child.wait_forwarding_signals();
            tracing::info!(app = %spec.app, code, "spoke runtime exited");
            code
        }
        Err(err) => report_failure(&err),
    }
}

/// Logs `err`, writes the protocol's error line, and returns [`SETUP_FAILURE_EXIT_CODE`].
fn report_failure(err: &LaunchError) -> i32 {
    tracing::error!(error = %err, "spoke launch failed");
    let line = serde_json::json!({ "error": err.to_string() }).to_string();
    if let Err(write_err) = write_line(&line) {
        tracing::warn!(error = %write_err, "cannot write the error line to stdout");
    }
    SETUP_FAILURE_EXIT_CODE
}

fn write_line(line: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(line.as_bytes())?;
    stdout.write_all(b"\n")?;
    stdout.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mounts::{MountPlan, DEFAULT_TMP_SIZE_BYTES};

    fn spec() -> LaunchSpec {
        LaunchSpec {
            app: "notes".to_string(),
            host_uid: 2_000_000_000,
            host_gid: 2_000_000_000,
            mounts: MountPlan {
                binds: Vec::new(),
                symlinks: Vec::new(),
                state_dir: None,
                tmp_size_bytes: DEFAULT_TMP_SIZE_BYTES,
            },
            cgroup_procs: Vec::new(),
            runtime_args: vec!["bulkhead-spoke".to_string(), "serve".to_string()],
            runtime_env: vec![("RUST_LOG".to_string(), "info".to_string())],
            egress_channel: false,
        }
    }

    #[test]
    fn valid_spec_accepted() {
        spec().validate().expect("valid spec");
    }

    #[test]
    fn root_host_ids_rejected() {
        let mut uid_zero = spec();
        uid_zero.host_uid = 0;
        let err = uid_zero.validate().expect_err("uid 0");
        assert!(
            matches!(err, LaunchError::RootHostId { kind: "uid" }),
            "{err}"
        );

        let mut gid_zero = spec();
        gid_zero.host_gid = 0;
        let err = gid_zero.validate().expect_err("gid 0");
        assert!(
            matches!(err, LaunchError::RootHostId { kind: "gid" }),
            "{err}"
        );
    }

    #[test]
    fn invalid_app_names_rejected() {
        for app in ["", "no spaces", "slash/name", "caf\u{e9}"] {
            let mut invalid = spec();
            invalid.app = app.to_string();
            let err = invalid.validate().expect_err("invalid app name");
            assert!(
                matches!(err, LaunchError::InvalidAppName { .. }),
                "{app:?}: {err}"
            );
        }
    }

    #[test]
    fn runtime_args_and_env_checked() {
        let mut no_args = spec();
        no_args.runtime_args.clear();
        assert!(matches!(
            no_args.validate(),
            Err(LaunchError::EmptyRuntimeArgs)
        ));

        let mut nul_arg = spec();
        nul_arg.runtime_args.push("a\0b".to_string());
        let err = nul_arg.validate().expect_err("NUL in argument");
        assert!(
            matches!(
                err,
                LaunchError::NulByte {
                    field: "runtime_args",
                    index: 2
                }
            ),
            "{err}"
        );

        for name in ["", "A=B", "A\0"] {
            let mut bad_env = spec();
            bad_env
                .runtime_env
                .push((name.to_string(), "x".to_string()));
            let err = bad_env.validate().expect_err("invalid env name");
            assert!(
                matches!(err, LaunchError::InvalidEnvName { index: 1, .. }),
                "{name:?}: {err}"
            );
        }

        let mut nul_value = spec();
        nul_value.runtime_env[0].1 = "a\0".to_string();
        let err = nul_value.validate().expect_err("NUL in env value");
        assert!(
            matches!(
                err,
                LaunchError::NulByte {
                    field: "runtime_env",
                    index: 0
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn invalid_mount_plan_rejected() {
        let mut zero_tmp = spec();
        zero_tmp.mounts.tmp_size_bytes = 0;
        let err = zero_tmp.validate().expect_err("zero tmp size");
        assert!(
            matches!(err, LaunchError::Plan(MountError::ZeroTmpSize)),
            "{err}"
        );
    }

    #[test]
    fn hostname_prefixed_and_cut() {
        assert_eq!(spec().hostname(), "bulkhead-notes");
        let mut long = spec();
        long.app = "a".repeat(63);
        let hostname = long.hostname();
        assert_eq!(hostname.len(), HOST_NAME_MAX);
        assert!(hostname.starts_with("bulkhead-aaa"));
        let mut multibyte = spec();
        multibyte.app = "\u{e9}".repeat(40);
        assert!(multibyte.hostname().len() <= HOST_NAME_MAX);
    }

    #[test]
    fn spec_json_field_names() {
        let value = serde_json::to_value(spec()).expect("serialize");
        for field in [
            "app",
            "host_uid",
            "host_gid",
            "mounts",
            "cgroup_procs",
            "runtime_args",
            "runtime_env",
        ] {
            assert!(value.get(field).is_some(), "missing {field}");
        }
        assert_eq!(
            value["runtime_env"][0],
            serde_json::json!(["RUST_LOG", "info"])
        );
    }
}
