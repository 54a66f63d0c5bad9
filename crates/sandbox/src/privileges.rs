//! Privilege primitives: ids, capabilities, securebits, no_new_privs and the parent-death signal.
//!
//! Each function except [`read_last_capability`] is one or a few raw syscalls with no allocation,
//! so the launcher's cloned child may call them between clone and exec. The spoke runtime reuses
//! [`set_no_new_privs`] and [`set_parent_death_signal`].

use std::io;
use std::path::PathBuf;

use nix::errno::Errno;

/// File with the highest capability number of the running kernel.
pub const CAP_LAST_CAP_PATH: &str = "/proc/sys/kernel/cap_last_cap";

/// Securebits for a spoke: uid 0 grants no capabilities on exec, setuid calls never adjust
/// capabilities, capabilities are not kept across setuid, and all three choices are locked.
pub const SPOKE_SECUREBITS: libc::c_int = libc::SECBIT_NOROOT
    | libc::SECBIT_NOROOT_LOCKED
    | libc::SECBIT_NO_SETUID_FIXUP
    | libc::SECBIT_NO_SETUID_FIXUP_LOCKED
    | libc::SECBIT_KEEP_CAPS_LOCKED;

/// Errors from the privilege primitives, one per operation.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("set no_new_privs: {0}")]
    NoNewPrivs(#[source] io::Error),
    #[error("set parent-death signal {signal}: {source}")]
    ParentDeathSignal {
        signal: libc::c_int,
        source: io::Error,
    },
    #[error("clear ambient capabilities: {0}")]
    ClearAmbient(#[source] io::Error),
    #[error("drop capability {capability} from the bounding set: {source}")]
    DropBounding { capability: u32, source: io::Error },
    #[error("set securebits {bits:#x}: {source}")]
    Securebits {
        bits: libc::c_int,
        source: io::Error,
    },
    #[error("clear capability sets with capset: {0}")]
    ClearCapabilities(#[source] io::Error),
    #[error("drop supplementary groups: {0}")]
    DropGroups(#[source] io::Error),
    #[error("clear the dumpable flag with PR_SET_DUMPABLE: {0}")]
    ClearDumpable(#[source] io::Error),
    #[error("set RLIMIT_CORE to 0: {0}")]
    DisableCoreDumps(#[source] io::Error),
    #[error("switch to uid 0 and gid 0 of the user namespace: {0}")]
    BecomeNamespaceRoot(#[source] io::Error),
    #[error("read {path}: {source}")]
    ReadLastCap { path: PathBuf, source: io::Error },
    #[error("parse {path}: {text:?} is not a capability number")]
    ParseLastCap { path: PathBuf, text: String },
}

impl PrivilegeError {
    /// Returns the errno behind the error, when a syscall failed.
    pub fn errno(&self) -> Option<Errno> {
        let source = match self {
            PrivilegeError::NoNewPrivs(source)
            | PrivilegeError::ClearAmbient(source)
            | PrivilegeError::ClearCapabilities(source)
            | PrivilegeError::DropGroups(source)
            | PrivilegeError::DisableCoreDumps(source)
            | PrivilegeError::ClearDumpable(source)
            | PrivilegeError::BecomeNamespaceRoot(source) => source,
            PrivilegeError::ParentDeathSignal { source, .. }
            | PrivilegeError::DropBounding { source, .. }
            | PrivilegeError::Securebits { source, .. }
            | PrivilegeError::ReadLastCap { source, .. } => source,
            PrivilegeError::ParseLastCap { .. } => return None,
        };
        source.raw_os_error().map(Errno::from_raw)
    }
}

impl From<PrivilegeError> for io::Error {
    /// Keeps only the errno when there is one, so the conversion does not allocate. That matters
    /// in a `pre_exec` hook, which runs in the forked child of a multi-threaded process.
    fn from(err: PrivilegeError) -> io::Error {
        match err.errno() {
            Some(errno) => io::Error::from_raw_os_error(errno as i32),
            None => io::Error::other(err),
        }
    }
}

fn prctl(option: libc::c_int, arg2: libc::c_ulong) -> Result<(), io::Error> {
    // SAFETY: every option used in this module takes integer arguments only, and unused ones are 0.
    let rc = unsafe {
        libc::prctl(
            option,
            arg2,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    Errno::result(rc).map(drop).map_err(io::Error::from)
}

/// Sets no_new_privs, so no later exec can gain privileges through setuid bits or file capabilities.
/// Seccomp filters without CAP_SYS_ADMIN require it.
pub fn set_no_new_privs() -> Result<(), PrivilegeError> {
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1).map_err(PrivilegeError::NoNewPrivs)
}

/// Asks the kernel to send `signal` (a signal number such as `libc::SIGKILL`) to this process when
/// the thread that created it exits.
///
/// The signal fires on the exit of the creating thread, not of the whole parent process, and it is
/// cleared when this process changes its effective ids. Callers set it after their last id change
/// and then check that the parent is still alive, because it may have died before the call.
pub fn set_parent_death_signal(signal: libc::c_int) -> Result<(), PrivilegeError> {
    let number = libc::c_ulong::from(signal.unsigned_abs());
    prctl(libc::PR_SET_PDEATHSIG, number)
        .map_err(|source| PrivilegeError::ParentDeathSignal { signal, source })
}

/// Clears the calling process's dumpable flag.
///
/// The kernel then lets only a process with CAP_SYS_PTRACE in this process's user namespace open
/// its `/proc/PID/mem`, `environ`, `fd` and `root` or attach to it, so an app without
/// capabilities cannot reach the spoke runtime through /proc. `execve` sets the flag again, so the
/// runtime calls this after its own exec, and the apps it starts are dumpable as usual.
pub fn clear_dumpable() -> Result<(), PrivilegeError> {
    prctl(libc::PR_SET_DUMPABLE, 0).map_err(PrivilegeError::ClearDumpable)
}

/// Clears the ambient capability set.
pub fn clear_ambient_capabilities() -> Result<(), PrivilegeError> {
    let clear_all = libc::c_ulong::from(libc::PR_CAP_AMBIENT_CLEAR_ALL.unsigned_abs());
    // SAFETY: PR_CAP_AMBIENT takes integer arguments only.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            clear_all,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    Errno::result(rc)
        .map(drop)
        .map_err(|errno| PrivilegeError::ClearAmbient(errno.into()))
}

/// Drops capabilities 0 through `last_cap` from the bounding set. Needs CAP_SETPCAP.
pub fn drop_bounding_set(last_cap: u32) -> Result<(), PrivilegeError> {
    for capability in 0..=last_cap {
        prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(capability))
            .map_err(|source| PrivilegeError::DropBounding { capability, source })?;
    }
    Ok(())
}

/// Sets and locks [`SPOKE_SECUREBITS`]. Needs CAP_SETPCAP, so it comes before [`clear_capabilities`].
pub fn lock_securebits() -> Result<(), PrivilegeError> {
    let bits = SPOKE_SECUREBITS;
    prctl(
        libc::PR_SET_SECUREBITS,
        libc::c_ulong::from(bits.unsigned_abs()),
    )
    .map_err(|source| PrivilegeError::Securebits { bits, source })
}

/// Kernel ABI of capset(2), version 3: a header and two 32-bit halves of each set.
#[repr(C)]
struct CapabilityHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapabilityData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Clears the effective, permitted and inheritable capability sets of this thread.
pub fn clear_capabilities() -> Result<(), PrivilegeError> {
    let mut header = CapabilityHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapabilityData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: `header` is a version 3 header and `data` has the two elements that version needs.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut _, data.as_ptr()) };
    Errno::result(rc)
        .map(drop)
        .map_err(|errno| PrivilegeError::ClearCapabilities(errno.into()))
}

/// Drops every supplementary group. Needs CAP_SETGID.
pub fn drop_supplementary_groups() -> Result<(), PrivilegeError> {
    // SAFETY: a zero-length list needs no valid pointer.
    let rc = unsafe { libc::setgroups(0, std::ptr::null()) };
    Errno::result(rc)
        .map(drop)
        .map_err(|errno| PrivilegeError::DropGroups(errno.into()))
}

/// Sets RLIMIT_CORE to 0 (soft and hard), so no core dump of this process or its children can
/// leak memory to disk.
pub fn disable_core_dumps() -> Result<(), PrivilegeError> {
    let limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_CORE, &limit) };
    Errno::result(rc)
        .map(drop)
        .map_err(|errno| PrivilegeError::DisableCoreDumps(errno.into()))
}

/// Switches real, effective and saved ids to uid 0 and gid 0 of the current user namespace. Group
/// ids go first, because changing them needs CAP_SETGID, which the uid change may remove.
pub fn become_namespace_root() -> Result<(), PrivilegeError> {
    // SAFETY: setresgid and setresuid take integer arguments only.
    let rc = unsafe { libc::setresgid(0, 0, 0) };
    Errno::result(rc).map_err(|errno| PrivilegeError::BecomeNamespaceRoot(errno.into()))?;
    // SAFETY: as above.
    let rc = unsafe { libc::setresuid(0, 0, 0) };
    Errno::result(rc)
        .map(drop)
        .map_err(|errno| PrivilegeError::BecomeNamespaceRoot(errno.into()))
}

/// Reads the highest capability number of the running kernel from [`CAP_LAST_CAP_PATH`].
pub fn read_last_capability() -> Result<u32, PrivilegeError> {
    let path = PathBuf::from(CAP_LAST_CAP_PATH);
    let text = std::fs::read_to_string(&path).map_err(|source| PrivilegeError::ReadLastCap {
        path: path.clone(),
        source,
    })?;
    text.trim()
        .parse()
        .map_err(|_| PrivilegeError::ParseLastCap { path, text })
}
