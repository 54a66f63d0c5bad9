//! The cloned child: PID 1 of the new namespaces until it executes the runtime.
//!
//! Everything here works on data the launcher prepared before the clone and issues plain syscalls.
//! The launcher is checked to be single-threaded, so the child's copy of the address space holds no
//! lock of another thread. The one place that allocates is the text of a failure message, because
//! std formats errno descriptions into a String, and that is safe for the same reason.

use std::ffi::CString;
use std::fmt::{self, Write as _};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};

use super::start::ExecArgs;
use super::{CHANNEL_FD, EGRESS_FD, SETUP_FAILURE_EXIT_CODE};
use crate::fds::{self, write_all, FdError};
use crate::mounts::apply::{self, failed, StepFailure};
use crate::mounts::prepare::PreparedRoot;
use crate::privileges::{self, PrivilegeError};

/// Everything the child uses, prepared by the launcher before the clone.
pub(super) struct ChildPlan {
    pub root: PreparedRoot,
    pub hostname: CString,
    /// O_PATH descriptor of the runtime binary.
    pub runtime: OwnedFd,
    /// Host /dev/null opened read-write, for the runtime's stdin and stdout.
    pub dev_null: OwnedFd,
    pub exec_args: ExecArgs,
    /// Highest capability number of the kernel, read before the pivot hides the host /proc.
    pub last_cap: u32,
    /// Signal mask from before the launcher blocked the forwarded signals.
    pub original_mask: SigSet,
    /// Whether the runtime keeps the egress channel at [`EGRESS_FD`].
    pub egress_channel: bool,
}

/// The child's ends of the two setup pipes.
#[derive(Debug, Clone, Copy)]
pub(super) struct ChildPipes {
    /// Read end of the sync pipe. One byte releases the child after the id maps are written. EOF
    /// after that byte means the launcher died.
    pub sync: RawFd,
    /// Write end of the error pipe: a failure message, or EOF at exec when setup succeeded.
    pub error: RawFd,
}

enum ChildFailure<'a> {
    Step(StepFailure<'a>),
    Privilege(PrivilegeError),
    Fds(FdError),
    /// The launcher exited during setup, so no one is left to read a message.
    ParentGone,
}

impl fmt::Display for ChildFailure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildFailure::Step(failure) => failure.fmt(f),
            ChildFailure::Privilege(err) => err.fmt(f),
            ChildFailure::Fds(err) => write!(f, "close inherited descriptors: {err}"),
            ChildFailure::ParentGone => f.write_str("the launcher exited during setup"),
        }
    }
}

impl<'a> From<StepFailure<'a>> for ChildFailure<'a> {
    fn from(failure: StepFailure<'a>) -> Self {
        ChildFailure::Step(failure)
    }
}

impl From<PrivilegeError> for ChildFailure<'_> {
    fn from(err: PrivilegeError) -> Self {
        ChildFailure::Privilege(err)
    }
}

impl From<FdError> for ChildFailure<'_> {
    fn from(err: FdError) -> Self {
        ChildFailure::Fds(err)
    }
}

/// Runs the child's setup and executes the runtime. Never returns. On failure it writes the
/// message to the error pipe and exits with [`SETUP_FAILURE_EXIT_CODE`].
pub(super) fn run(plan: &ChildPlan, pipes: ChildPipes) -> ! {
    // In the new PID namespace the parent is outside it, so getppid() returns 0 here.
    // SAFETY: getppid has no preconditions.
    let parent_after_clone = unsafe { libc::getppid() };
    let failure = match set_up(plan, pipes, parent_after_clone) {
        Ok(()) => execute(plan),
        Err(failure) => failure,
    };
    let mut message = MessageBuffer::new();
    // A message longer than the buffer is cut, which is the only error write! can return here.
    let _ = write!(message, "{failure}");
    let _ = write_all(pipes.error, message.as_bytes());
    // SAFETY: _exit ends the process without running the launcher's atexit handlers or
    // destructors, which belong to the parent.
    unsafe { libc::_exit(SETUP_FAILURE_EXIT_CODE) }
}

fn set_up<'a>(
    plan: &'a ChildPlan,
    pipes: ChildPipes,
    parent_after_clone: libc::pid_t,
) -> Result<(), ChildFailure<'a>> {
    wait_for_release(pipes.sync)?;
    privileges::become_namespace_root()?;
    set_hostname(&plan.hostname)?;
    bring_up_loopback()?;
    // SAFETY: umask has no preconditions. 022 makes the generated files' modes predictable.
    unsafe { libc::umask(0o022) };

    apply::build_root(&plan.root)?;

    for target in [libc::STDIN_FILENO, libc::STDOUT_FILENO] {
        // SAFETY: both descriptors are open, and dup2 replaces `target` atomically.
        let rc = unsafe { libc::dup2(plan.dev_null.as_raw_fd(), target) };
        Errno::result(rc).map_err(failed("redirect stdin and stdout to", "/dev/null"))?;
    }
    let keep = [
        libc::STDIN_FILENO,
        libc::STDOUT_FILENO,
        libc::STDERR_FILENO,
        CHANNEL_FD,
        // Keeping the hub channel twice is harmless, so a spoke without egress keeps no extra fd.
        if plan.egress_channel { EGRESS_FD } else { CHANNEL_FD },
        plan.runtime.as_raw_fd(),
        pipes.sync,
        pipes.error,
    ];
    fds::close_other_fds(&keep)?;
    // SAFETY: setsid has no preconditions. It succeeds because the child leads no process group.
    Errno::result(unsafe { libc::setsid() })
        .map_err(failed("start a new session with", "setsid"))?;

    privileges::set_no_new_privs()?;
    privileges::clear_ambient_capabilities()?;
    privileges::drop_bounding_set(plan.last_cap)?;
    privileges::lock_securebits()?;
    privileges::clear_capabilities()?;
    privileges::set_parent_death_signal(libc::SIGKILL)?;
    check_parent_alive(pipes.sync, parent_after_clone)?;

    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&plan.original_mask), None)
        .map_err(failed("restore the signal mask with", "sigprocmask"))?;
    Ok(())
}

/// Executes the runtime. Returns only on failure.
fn execute(plan: &ChildPlan) -> ChildFailure<'_> {
    // SAFETY: argv and envp are NULL-terminated arrays of pointers to NUL-terminated strings owned
    // by `plan`, and the path is an empty string used with AT_EMPTY_PATH.
    let rc = unsafe {
        libc::execveat(
            plan.runtime.as_raw_fd(),
            c"".as_ptr(),
            plan.exec_args.argv.as_ptr().cast(),
            plan.exec_args.envp.as_ptr().cast(),
            libc::AT_EMPTY_PATH,
        )
    };
    let errno = Errno::result(rc).err().unwrap_or(Errno::UnknownErrno);
    ChildFailure::Step(failed("execute the spoke runtime", "")(errno))
}

fn wait_for_release(sync: RawFd) -> Result<(), ChildFailure<'static>> {
    let mut byte = [0u8; 1];
    loop {
        // SAFETY: `byte` is a writable one-byte buffer.
        let read = unsafe { libc::read(sync, byte.as_mut_ptr().cast(), 1) };
        match Errno::result(read) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(ChildFailure::ParentGone),
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(failed("wait on the sync pipe", "")(errno).into()),
        }
    }
}

/// Checks that the launcher still runs after the parent-death signal was set. getppid() stays 0
/// in the new PID namespace even after a reparent, so the sync pipe is the real check. The
/// launcher keeps its write end open until the runtime exits, so POLLHUP means it is gone.
fn check_parent_alive(
    sync: RawFd,
    parent_after_clone: libc::pid_t,
) -> Result<(), ChildFailure<'static>> {
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } != parent_after_clone {
        return Err(ChildFailure::ParentGone);
    }
    let mut poll = libc::pollfd {
        fd: sync,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `poll` is one valid pollfd, and a zero timeout makes the call non-blocking.
    let rc = unsafe { libc::poll(&mut poll, 1, 0) };
    Errno::result(rc).map_err(failed("poll the sync pipe", ""))?;
    if poll.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
        return Err(ChildFailure::ParentGone);
    }
    Ok(())
}

fn set_hostname(hostname: &CString) -> Result<(), ChildFailure<'static>> {
    let bytes = hostname.as_bytes();
    // SAFETY: `bytes` is a valid buffer of the given length.
    let rc = unsafe { libc::sethostname(bytes.as_ptr().cast(), bytes.len()) };
    Errno::result(rc)
        .map(drop)
        .map_err(|errno| failed("set the hostname", "")(errno).into())
}

/// Sets IFF_UP on `lo` of the new network namespace, so 127.0.0.1 and ::1 work inside.
fn bring_up_loopback() -> Result<(), ChildFailure<'static>> {
    let step = failed("bring up the loopback interface", "lo");
    // SAFETY: socket takes integer arguments only.
    let socket = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    let socket = Errno::result(socket).map_err(&step)?;
    // SAFETY: `socket` was just opened and is owned here.
    let socket: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(socket) };

    // SAFETY: ifreq is a plain C struct for which all zero bytes are a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: `request` is a valid ifreq naming "lo"; SIOCGIFFLAGS fills in ifru_flags.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) };
    Errno::result(rc).map_err(&step)?;
    // IFF_UP is 1, which fits the c_short flags field.
    let up = libc::c_short::try_from(libc::IFF_UP).unwrap_or(1);
    // SAFETY: SIOCGIFFLAGS initialized the ifru_flags member of the union.
    unsafe {
        request.ifr_ifru.ifru_flags |= up;
    }
    // SAFETY: `request` is a valid ifreq naming "lo" with the new flags.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) };
    Errno::result(rc)
        .map(drop)
        .map_err(|errno| step(errno).into())
}

/// A fixed-size message buffer that cuts text beyond its capacity instead of allocating.
struct MessageBuffer {
    bytes: [u8; 1024],
    length: usize,
}

impl MessageBuffer {
    fn new() -> MessageBuffer {
        MessageBuffer {
            bytes: [0; 1024],
            length: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.length]
    }
}

impl fmt::Write for MessageBuffer {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let free = self.bytes.len() - self.length;
        let count = text.len().min(free);
        self.bytes[self.length..self.length + count].copy_from_slice(&text.as_bytes()[..count]);
        self.length += count;
        if count < text.len() {
            return Err(fmt::Error);
        }
        Ok(())
    }
}
