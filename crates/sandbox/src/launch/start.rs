//! Host side of a launch before the clone: checks, cgroups, dropped groups, and every descriptor
//! and string the child will need, prepared so the child only issues syscalls.

use std::ffi::{c_char, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
use nix::unistd::getppid;

use super::child::ChildPlan;
use super::parent::{self, RunningChild};
use super::{ExecTarget, LaunchError, LaunchSpec, CHANNEL_FD, EGRESS_FD};
use crate::mounts::{prepare, sys};
use crate::privileges;

/// Signals the launcher forwards to the runtime.
pub(super) const FORWARDED_SIGNALS: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

/// Runs launch steps up to the child's exec and returns the running child.
pub(super) fn start(spec: &LaunchSpec, exec: &ExecTarget) -> Result<RunningChild, LaunchError> {
    let parent_at_entry = getppid();
    privileges::set_parent_death_signal(libc::SIGKILL)?;
    if getppid() != parent_at_entry {
        return Err(LaunchError::ParentDied);
    }
    check_channel_open()?;
    if spec.egress_channel && !fd_is_open(EGRESS_FD) {
        return Err(LaunchError::EgressChannelNotOpen);
    }
    check_single_threaded()?;
    spec.validate()?;

    for path in &spec.cgroup_procs {
        join_cgroup(path)?;
    }
    privileges::drop_supplementary_groups()?;
    privileges::disable_core_dumps()?;

    let plan = ChildPlan {
        root: prepare::prepare_root(&spec.mounts)?,
        hostname: c_string(spec.hostname()),
        runtime: open_runtime(exec)?,
        dev_null: open_dev_null()?,
        exec_args: ExecArgs::new(spec),
        last_cap: privileges::read_last_capability()?,
        original_mask: block_forwarded_signals()?,
        egress_channel: spec.egress_channel,
    };
    tracing::debug!(app = %spec.app, binds = plan.root.binds.len(), "mount sources opened");
    parent::spawn(&plan, spec)
}

/// Closes the launcher's copies of the hub's stdout pipe and of the channels once the runtime runs.
/// stdout is pointed at /dev/null rather than closed, so fd 1 stays valid for stray writes. The
/// hub then reads EOF from both as soon as the runtime exits.
pub(super) fn release_stdio(egress_channel: bool) {
    match open_dev_null() {
        Ok(dev_null) => {
            // SAFETY: both descriptors are open, and dup2 replaces fd 1 atomically.
            let rc = unsafe { libc::dup2(dev_null.as_raw_fd(), libc::STDOUT_FILENO) };
            if let Err(errno) = Errno::result(rc) {
                tracing::warn!(error = %errno, "cannot redirect stdout to /dev/null");
            }
        }
        Err(err) => tracing::warn!(error = %err, "cannot redirect stdout to /dev/null"),
    }
    // SAFETY: the launcher never uses the channel itself. The runtime has its own copy.
    unsafe { libc::close(CHANNEL_FD) };
    if egress_channel {
        // SAFETY: as for the hub channel, the runtime has its own copy.
        unsafe { libc::close(EGRESS_FD) };
    }
}

fn check_channel_open() -> Result<(), LaunchError> {
    if fd_is_open(CHANNEL_FD) {
        Ok(())
    } else {
        Err(LaunchError::ChannelNotOpen)
    }
}

fn fd_is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor flags.
    let rc = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    Errno::result(rc).is_ok()
}

/// Rejects a multi-threaded launcher: after clone only the calling thread exists in the child, so
/// a lock held by another thread (for example in malloc) would stay locked forever.
fn check_single_threaded() -> Result<(), LaunchError> {
    let count = std::fs::read_dir("/proc/self/task")
        .map_err(LaunchError::CountThreads)?
        .count();
    if count != 1 {
        return Err(LaunchError::MultiThreaded { count });
    }
    Ok(())
}

fn join_cgroup(path: &Path) -> Result<(), LaunchError> {
    let pid = std::process::id().to_string();
    std::fs::write(path, pid).map_err(|source| LaunchError::JoinCgroup {
        path: path.to_path_buf(),
        source,
    })
}

fn open_runtime(exec: &ExecTarget) -> Result<OwnedFd, LaunchError> {
    let flags = libc::O_PATH | libc::O_CLOEXEC;
    match exec {
        // /proc/self/exe is a magic link and must be followed to reach the binary.
        ExecTarget::CurrentExe => {
            let path = Path::new("/proc/self/exe");
            sys::openat2(libc::AT_FDCWD, c"/proc/self/exe", flags, 0, 0).map_err(|errno| {
                LaunchError::OpenRuntime {
                    path: path.to_path_buf(),
                    source: errno.into(),
                }
            })
        }
        ExecTarget::Path(path) => {
            let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
                LaunchError::OpenRuntime {
                    path: path.clone(),
                    source: io::Error::from(Errno::EINVAL),
                }
            })?;
            match sys::openat2(libc::AT_FDCWD, &c_path, flags, 0, libc::RESOLVE_NO_SYMLINKS) {
                Ok(fd) => Ok(fd),
                Err(Errno::ELOOP) => Err(LaunchError::RuntimeSymlink { path: path.clone() }),
                Err(errno) => Err(LaunchError::OpenRuntime {
                    path: path.clone(),
                    source: errno.into(),
                }),
            }
        }
    }
}

fn open_dev_null() -> Result<OwnedFd, LaunchError> {
    // SAFETY: the path is NUL-terminated.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    let fd = Errno::result(fd).map_err(|errno| LaunchError::OpenDevNull(errno.into()))?;
    // SAFETY: open just returned `fd` as a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Blocks the forwarded signals and SIGCHLD, so the wait loop can take them with sigwait and none
/// arrives between the clone and the loop. Returns the previous mask, which the child restores.
fn block_forwarded_signals() -> Result<SigSet, LaunchError> {
    let mut set = SigSet::empty();
    for signal in FORWARDED_SIGNALS {
        set.add(signal);
    }
    set.add(Signal::SIGCHLD);
    let mut original = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut original))
        .map_err(|errno| LaunchError::BlockSignals(io::Error::from(errno)))?;
    Ok(original)
}

/// argv and envp as C strings with the NULL-terminated pointer arrays execveat needs.
pub(super) struct ExecArgs {
    _strings: Vec<CString>,
    pub argv: Vec<*const c_char>,
    pub envp: Vec<*const c_char>,
}

impl ExecArgs {
    fn new(spec: &LaunchSpec) -> ExecArgs {
        let argv_strings: Vec<CString> = spec.runtime_args.iter().cloned().map(c_string).collect();
        let envp_strings: Vec<CString> = spec
            .runtime_env
            .iter()
            .map(|(name, value)| c_string(format!("{name}={value}")))
            .collect();
        // The pointers stay valid because each CString's heap buffer does not move when the
        // CString itself moves into `_strings`.
        let pointers = |strings: &[CString]| {
            let mut pointers: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
            pointers.push(std::ptr::null());
            pointers
        };
        let argv = pointers(&argv_strings);
        let envp = pointers(&envp_strings);
        let mut strings = argv_strings;
        strings.extend(envp_strings);
        ExecArgs {
            _strings: strings,
            argv,
            envp,
        }
    }
}

/// Converts validated text to a C string. Validation rejected NUL bytes, so dropping them here
/// changes nothing.
fn c_string(text: String) -> CString {
    CString::new(text.replace('\0', "")).unwrap_or_default()
}
