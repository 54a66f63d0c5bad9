//! Probes for the isolation primitives that the host kernel offers, and the check that every
//! primitive a spoke needs is there before a spoke starts.
//!
//! Each probe is one cheap, side-effect-free system call or file read, so the hub may run them
//! before every spoke start and `bulkhead check` may run them in-process.

use std::ffi::CString;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::OnceLock;

use serde::Serialize;

use crate::cgroup::{self, Controller};

/// Environment variable that makes the probe report the listed primitives (keys separated by
/// commas, such as `openat2`) as missing. The end-to-end tests set it in bulkheadd's environment
/// to show that a spoke refuses to start without a primitive. The launcher and the spokes start
/// with an empty environment, so an app cannot set it.
pub const TEST_MISSING_ENV: &str = "BULKHEAD_TEST_MISSING_PRIMITIVE";

/// Namespaces a spoke is cloned into: the probe key, the display name and the `/proc/self/ns`
/// entry that exists when the kernel supports the namespace type.
const NAMESPACES: [(&str, &str, &str); 7] = [
    ("user_namespace", "user namespace", "user"),
    ("mount_namespace", "mount namespace", "mnt"),
    ("pid_namespace", "PID namespace", "pid"),
    ("network_namespace", "network namespace", "net"),
    ("ipc_namespace", "IPC namespace", "ipc"),
    ("uts_namespace", "UTS namespace", "uts"),
    ("cgroup_namespace", "cgroup namespace", "cgroup"),
];

/// The probe result for one primitive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrimitiveStatus {
    /// Short key, as accepted by [`TEST_MISSING_ENV`]: `openat2`, `user_namespace`, ...
    pub key: &'static str,
    /// Human-readable name.
    pub name: &'static str,
    /// Whether the host offers the primitive.
    pub available: bool,
    /// Whether every spoke start needs it. A spoke never starts without a required primitive.
    pub required: bool,
    /// The evidence found, or the reason the primitive is missing.
    pub detail: String,
}

/// Error of [`require_spoke_primitives`].
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(
        "the host lacks {name} ({detail}), which every spoke needs, so the spoke was not started; \
         run `bulkhead check` on the host to list every missing primitive"
    )]
    Missing { name: &'static str, detail: String },
}

/// Probes every primitive, applying [`TEST_MISSING_ENV`] from this process's environment.
pub fn probe_host() -> Vec<PrimitiveStatus> {
    static PROBED: OnceLock<Vec<PrimitiveStatus>> = OnceLock::new();
    let mut statuses = PROBED.get_or_init(probe_kernel).clone();
    let forced = std::env::var(TEST_MISSING_ENV).unwrap_or_default();
    apply_forced_missing(&mut statuses, &forced);
    statuses
}

/// Fails with the first required primitive that the host lacks.
pub fn require_spoke_primitives() -> Result<(), ProbeError> {
    match probe_host()
        .into_iter()
        .find(|status| status.required && !status.available)
    {
        Some(missing) => Err(ProbeError::Missing {
            name: missing.name,
            detail: missing.detail,
        }),
        None => Ok(()),
    }
}

/// Marks each primitive whose key is in the comma-separated `forced` list as missing.
pub fn apply_forced_missing(statuses: &mut [PrimitiveStatus], forced: &str) {
    for key in forced
        .split(',')
        .map(str::trim)
        .filter(|key| !key.is_empty())
    {
        for status in statuses.iter_mut().filter(|status| status.key == key) {
            status.available = false;
            status.detail = format!("reported missing because {TEST_MISSING_ENV}={forced}");
        }
    }
}

fn probe_kernel() -> Vec<PrimitiveStatus> {
    let mut statuses: Vec<PrimitiveStatus> = NAMESPACES
        .iter()
        .map(|&(key, name, entry)| namespace_status(key, name, entry))
        .collect();
    statuses.push(seccomp_status());
    statuses.push(cgroup_status());
    statuses.push(syscall_status(
        "openat2",
        "openat2",
        true,
        probe_openat2(),
        "mount sources are opened with RESOLVE_NO_SYMLINKS",
    ));
    statuses.push(syscall_status(
        "close_range",
        "close_range",
        false,
        probe_close_range(),
        "without it the launcher walks /proc/self/fd",
    ));
    statuses.push(syscall_status(
        "pidfd",
        "pidfd_open",
        false,
        probe_pidfd(),
        "not used by spokes yet",
    ));
    statuses
}

fn namespace_status(key: &'static str, name: &'static str, entry: &str) -> PrimitiveStatus {
    let path = Path::new("/proc/self/ns").join(entry);
    let mut available = path.exists();
    let mut detail = if available {
        format!("{} exists", path.display())
    } else {
        format!(
            "{} is missing, so the kernel lacks this namespace type",
            path.display()
        )
    };
    if key == "user_namespace" && available {
        // NOTE: this reads the sysctl only. A security module that blocks user namespaces
        // still shows up as a failed spoke start, not here.
        let limit = fs::read_to_string("/proc/sys/user/max_user_namespaces")
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok());
        if limit == Some(0) {
            available = false;
            detail = "/proc/sys/user/max_user_namespaces is 0".to_string();
        }
    }
    PrimitiveStatus {
        key,
        name,
        available,
        required: true,
        detail,
    }
}

fn seccomp_status() -> PrimitiveStatus {
    const SECCOMP_GET_ACTION_AVAIL: libc::c_ulong = 2;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    let action = SECCOMP_RET_ERRNO;
    // SAFETY: SECCOMP_GET_ACTION_AVAIL only reads the u32 that the pointer refers to.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_GET_ACTION_AVAIL,
            0,
            &action as *const u32,
        )
    };
    let result = if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    };
    syscall_status(
        "seccomp",
        "seccomp filters",
        true,
        result,
        "SECCOMP_RET_ERRNO filters are available",
    )
}

fn cgroup_status() -> PrimitiveStatus {
    let (available, detail) = match cgroup::detect() {
        Ok(hierarchy) => {
            let mut placed = Vec::new();
            let mut missing = Vec::new();
            for controller in Controller::ALL {
                match hierarchy.placement(controller) {
                    Some(mounted) => {
                        placed.push(format!("{} ({:?})", controller.name(), mounted.version))
                    }
                    None => missing.push(controller.name()),
                }
            }
            if missing.is_empty() {
                (true, placed.join(", "))
            } else {
                (
                    false,
                    format!(
                        "no {} controller; found {}",
                        missing.join(", "),
                        placed.join(", ")
                    ),
                )
            }
        }
        Err(error) => (false, error.to_string()),
    };
    PrimitiveStatus {
        key: "cgroup",
        name: "cgroup memory, pids and cpu controllers",
        available,
        required: true,
        detail,
    }
}

fn syscall_status(
    key: &'static str,
    name: &'static str,
    required: bool,
    result: io::Result<()>,
    note: &str,
) -> PrimitiveStatus {
    let (available, detail) = match result {
        Ok(()) => (true, note.to_string()),
        Err(error) => (false, format!("{name} failed: {error}")),
    };
    PrimitiveStatus {
        key,
        name,
        available,
        required,
        detail,
    }
}

/// `struct open_how` of openat2(2).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn probe_openat2() -> io::Result<()> {
    const RESOLVE_NO_SYMLINKS: u64 = 0x04;
    let root = CString::new("/").map_err(io::Error::other)?;
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_NO_SYMLINKS,
    };
    // SAFETY: root and how are valid for the call, and the size matches struct open_how.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            root.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    close_returned_fd(fd)
}

fn probe_close_range() -> io::Result<()> {
    // The range starts above every possible descriptor, so the call closes nothing.
    // SAFETY: close_range takes integers only.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, u32::MAX, u32::MAX, 0u32) };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn probe_pidfd() -> io::Result<()> {
    // SAFETY: pidfd_open takes integers only.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0u32) };
    close_returned_fd(fd)
}

fn close_returned_fd(ret: libc::c_long) -> io::Result<()> {
    let Ok(fd) = libc::c_int::try_from(ret) else {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a descriptor that the probe just opened and owns.
    unsafe { libc::close(fd) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(key: &'static str) -> PrimitiveStatus {
        PrimitiveStatus {
            key,
            name: key,
            available: true,
            required: true,
            detail: String::new(),
        }
    }

    #[test]
    fn forced_missing_marks_named_keys() {
        let mut statuses = vec![status("openat2"), status("seccomp"), status("pidfd")];

        apply_forced_missing(&mut statuses, "openat2, pidfd");

        assert!(!statuses[0].available);
        assert!(statuses[1].available);
        assert!(!statuses[2].available);
        assert!(statuses[0].detail.contains(TEST_MISSING_ENV));
    }

    #[test]
    fn forced_missing_empty_changes_nothing() {
        let mut statuses = vec![status("openat2")];

        apply_forced_missing(&mut statuses, "");

        assert!(statuses[0].available);
    }

    #[test]
    fn probe_lists_every_primitive() {
        let keys: Vec<&str> = probe_kernel().iter().map(|status| status.key).collect();

        for key in [
            "user_namespace",
            "cgroup_namespace",
            "seccomp",
            "cgroup",
            "openat2",
            "close_range",
            "pidfd",
        ] {
            assert!(keys.contains(&key), "probe did not report {key}: {keys:?}");
        }
    }
}
