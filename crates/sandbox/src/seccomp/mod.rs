//! The app's seccomp policy: compiled before fork, applied right before exec.
//!
//! Two filters are stacked:
//!
//! 1. The allowlist, installed first. Listed syscalls are allowed and every other syscall number
//!    returns ENOSYS, including numbers with the x32 bit (0x40000000) set and `clone3`.
//! 2. The deny filter, installed second. It returns EPERM for dangerous syscalls and for dangerous
//!    arguments of allowed ones (namespace flags of `clone`, TIOCSTI, socket families outside the
//!    policy), and allows the rest.
//!
//! The kernel runs every filter and takes the most restrictive action. When two filters both return
//! an errno, the errno of the filter installed last wins, so EPERM from the deny filter overrides
//! ENOSYS from the allowlist. Each filter starts with seccompiler's architecture check, which kills
//! the process on a mismatch such as an i386 `int 0x80` syscall.

mod policy;
mod syscalls;

use std::io;

use seccompiler::{BackendError, BpfProgram, TargetArch};
use serde::{Deserialize, Serialize};

pub use policy::{ALLOWED_PERSONALITIES, DENIED_CLONE_FLAGS, DENIED_IOCTLS};
pub use syscalls::{allowed_syscalls, denied_syscalls, Syscall};

/// Socket address families that an app may create sockets in.
///
/// Every family outside the chosen set (AF_NETLINK, AF_PACKET, AF_VSOCK, ...) gets EPERM from
/// `socket` and `socketpair`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkFamilies {
    /// AF_UNIX only.
    UnixOnly,
    /// AF_UNIX, AF_INET and AF_INET6. Apps with network mode "none" get this too, because their
    /// network namespace holds only loopback and some runtimes open inet sockets to 127.0.0.1.
    UnixAndInet,
}

impl NetworkFamilies {
    /// Returns the address families that `socket` and `socketpair` accept under this setting.
    pub fn allowed_families(self) -> &'static [libc::c_int] {
        match self {
            NetworkFamilies::UnixOnly => &[libc::AF_UNIX],
            NetworkFamilies::UnixAndInet => &[libc::AF_UNIX, libc::AF_INET, libc::AF_INET6],
        }
    }
}

/// Settings of the app's filters beyond the fixed syscall tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompPolicy {
    /// Socket address families the app may use.
    pub network: NetworkFamilies,
}

/// Errors from building the seccomp filters.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error(
        "seccomp: unsupported target architecture {arch}: {source}; build for x86_64 or aarch64"
    )]
    UnsupportedArch {
        arch: &'static str,
        #[source]
        source: BackendError,
    },
    #[error("seccomp rule for {syscall}: invalid condition: {source}")]
    BuildRule {
        syscall: &'static str,
        #[source]
        source: BackendError,
    },
    #[error("seccomp {filter} filter: invalid definition: {source}")]
    BuildFilter {
        filter: &'static str,
        #[source]
        source: BackendError,
    },
    #[error("seccomp {filter} filter: compile to BPF: {source}")]
    CompileFilter {
        filter: &'static str,
        #[source]
        source: BackendError,
    },
}

/// The two BPF programs of a [`SeccompPolicy`], ready to install without allocating.
pub struct CompiledFilters {
    allowlist: BpfProgram,
    denylist: BpfProgram,
}

impl std::fmt::Debug for CompiledFilters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledFilters")
            .field("allowlist_instructions", &self.allowlist.len())
            .field("denylist_instructions", &self.denylist.len())
            .finish()
    }
}

impl SeccompPolicy {
    /// Compiles the allowlist and the deny filter for the architecture this crate was built for.
    pub fn compile(&self) -> Result<CompiledFilters, SeccompError> {
        let arch_name = std::env::consts::ARCH;
        let arch =
            TargetArch::try_from(arch_name).map_err(|source| SeccompError::UnsupportedArch {
                arch: arch_name,
                source,
            })?;
        let filters = CompiledFilters {
            allowlist: policy::allowlist_program(arch)?,
            denylist: policy::denylist_program(self.network, arch)?,
        };
        tracing::debug!(
            network = ?self.network,
            allowlist_instructions = filters.allowlist.len(),
            denylist_instructions = filters.denylist.len(),
            "compiled seccomp filters"
        );
        Ok(filters)
    }
}

impl CompiledFilters {
    /// Installs the filters on the calling thread. Called in a pre_exec hook between fork and exec,
    /// so it must not allocate or take locks: only the prctl/seccomp syscalls on the prebuilt
    /// programs.
    ///
    /// seccompiler sets `no_new_privs` again before each install, which changes nothing when the
    /// caller has already set it. The allowlist goes first and lets `prctl` and `seccomp` through,
    /// so the deny filter can still be installed after it.
    pub fn apply(&self) -> io::Result<()> {
        install(&self.allowlist)?;
        install(&self.denylist)
    }
}

/// Installs one program on the calling thread without allocating, because the io::Error values
/// built here are raw OS error codes.
fn install(program: &[seccompiler::sock_filter]) -> io::Result<()> {
    match seccompiler::apply_filter(program) {
        Ok(()) => Ok(()),
        Err(seccompiler::Error::Prctl(error)) | Err(seccompiler::Error::Seccomp(error)) => {
            Err(error)
        }
        // An empty program is the only other error of a call without TSYNC, and compile never makes one.
        Err(_) => Err(io::Error::from_raw_os_error(libc::EINVAL)),
    }
}

#[cfg(test)]
mod tests;
