//! Child side of the mount plan: builds the new root on tmpfs and pivots into it.
//!
//! This runs in the cloned child before exec, so it only issues syscalls on data prepared by the
//! launcher. Every path inside the new root is opened with RESOLVE_BENEATH and
//! RESOLVE_NO_SYMLINKS relative to the root's descriptor, and mounts go through descriptors, so no
//! symlink created in the new root or present in a bound host directory can redirect a step.

use std::ffi::{CStr, CString};
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use crate::fds::write_all;

use super::prepare::{
    PreparedMount, PreparedRoot, PreparedSymlink, TargetKind, DEV_TMPFS_OPTIONS, ROOT_TMPFS_OPTIONS,
};
use super::sys::{self, FdPath, MountAttributes, RESOLVE_INSIDE};

/// Directory of the child's private mount namespace where the new root's tmpfs is mounted.
const NEW_ROOT_MOUNT_POINT: &CStr = c"/tmp";

/// Files written into the sandbox's /etc. There is deliberately no resolv.conf, because a spoke
/// has no resolver to reach.
const ETC_FILES: [(&CStr, &[u8]); 4] = [
    (c"passwd", b"root:x:0:0:bulkhead app:/state:/bin/sh\n"),
    (c"group", b"root:x:0:\n"),
    (
        c"hosts",
        b"127.0.0.1 localhost\n::1 localhost ip6-localhost\n",
    ),
    (
        c"nsswitch.conf",
        b"passwd: files\ngroup: files\nhosts: files\n",
    ),
];

/// Symlinks in the sandbox's /dev.
const DEV_SYMLINKS: [(&CStr, &CStr); 4] = [
    (c"fd", c"/proc/self/fd"),
    (c"stdin", c"/proc/self/fd/0"),
    (c"stdout", c"/proc/self/fd/1"),
    (c"stderr", c"/proc/self/fd/2"),
];

/// A failed setup step in the child: what it did, on which path, and the errno.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepFailure<'a> {
    pub step: &'static str,
    pub subject: &'a str,
    pub errno: Errno,
    /// Advice appended after the errno.
    pub hint: Option<&'static str>,
}

impl fmt::Display for StepFailure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subject.is_empty() {
            write!(f, "{}: {}", self.step, self.errno)?;
        } else {
            write!(f, "{} {}: {}", self.step, self.subject, self.errno)?;
        }
        if let Some(hint) = self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

pub(crate) type StepResult<'a, T> = Result<T, StepFailure<'a>>;

/// Returns a closure that turns an errno into a [`StepFailure`] of `step` on `subject`.
pub(crate) fn failed<'a>(
    step: &'static str,
    subject: &'a str,
) -> impl Fn(Errno) -> StepFailure<'a> {
    move |errno| StepFailure {
        step,
        subject,
        errno,
        hint: None,
    }
}

/// Builds the new root from `root`, pivots into it and detaches the old root. The working
/// directory is / of the new root afterwards.
pub(crate) fn build_root(root: &PreparedRoot) -> StepResult<'_, ()> {
    mount_fs(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None)
        .map_err(failed("make the mount tree private at", "/"))?;
    mount_fs(
        Some(c"tmpfs"),
        NEW_ROOT_MOUNT_POINT,
        Some(c"tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some(ROOT_TMPFS_OPTIONS),
    )
    .map_err(failed("mount the root tmpfs at", "/tmp"))?;
    let root_fd = sys::openat2(
        libc::AT_FDCWD,
        NEW_ROOT_MOUNT_POINT,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
        libc::RESOLVE_NO_SYMLINKS,
    )
    .map_err(failed("open the root tmpfs at", "/tmp"))?;
    let root_fd = root_fd.as_raw_fd();

    write_etc(root_fd)?;
    for symlink in &root.symlinks {
        create_symlink(root_fd, symlink)?;
    }
    for bind in &root.binds {
        attach(root_fd, bind)?;
    }
    mount_tmp(root_fd, &root.tmp_options)?;
    match &root.state {
        Some(state) => attach(root_fd, state)?,
        None => mount_state_tmpfs(root_fd, &root.state_tmpfs_options)?,
    }
    build_dev(root_fd, &root.dev_nodes)?;
    mount_proc(root_fd)?;
    pivot(root_fd)
}

/// Calls mount(2) with optional source, filesystem type and data.
fn mount_fs(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> Result<(), Errno> {
    let pointer = |text: Option<&CStr>| text.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: every non-null pointer is a NUL-terminated string that outlives the call.
    let rc = unsafe {
        libc::mount(
            pointer(source),
            target.as_ptr(),
            pointer(fstype),
            flags,
            pointer(data).cast(),
        )
    };
    Errno::result(rc).map(drop)
}

/// Opens the directory `components` below `root`, creating missing directories (mode 0755) on
/// the way, like `mkdir -p`.
fn open_dir_creating<'a, C: AsRef<CStr>>(
    root: RawFd,
    components: &[C],
    subject: &'a str,
) -> StepResult<'a, OwnedFd> {
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    let mut current =
        sys::openat2(root, c".", flags, 0, RESOLVE_INSIDE).map_err(failed("open", subject))?;
    for name in components {
        let name = name.as_ref();
        let parent = current.as_raw_fd();
        current = match sys::openat2(parent, name, flags, 0, RESOLVE_INSIDE) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                // SAFETY: `name` is NUL-terminated and `parent` is an open directory fd.
                let rc = unsafe { libc::mkdirat(parent, name.as_ptr(), 0o755) };
                Errno::result(rc).map_err(failed("create mount point directory for", subject))?;
                sys::openat2(parent, name, flags, 0, RESOLVE_INSIDE)
                    .map_err(failed("open mount point directory for", subject))?
            }
            Err(errno) => return Err(failed("open mount point directory for", subject)(errno)),
        };
    }
    Ok(current)
}

/// Splits `components` into the parent directory (created as needed) and the last name.
fn open_parent<'a>(
    root: RawFd,
    components: &'a [CString],
    subject: &'a str,
) -> StepResult<'a, (OwnedFd, &'a CStr)> {
    let Some((name, parents)) = components.split_last() else {
        return Err(failed("find the parent directory of", subject)(
            Errno::EINVAL,
        ));
    };
    Ok((open_dir_creating(root, parents, subject)?, name.as_c_str()))
}

/// Opens the regular-file mount point `components` below `root`, creating an empty file if needed.
fn open_file_creating<'a>(
    root: RawFd,
    components: &'a [CString],
    subject: &'a str,
) -> StepResult<'a, OwnedFd> {
    let (parent, name) = open_parent(root, components, subject)?;
    let parent = parent.as_raw_fd();
    let path_flags = libc::O_PATH | libc::O_CLOEXEC;
    match sys::openat2(parent, name, path_flags, 0, RESOLVE_INSIDE) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(errno) => return Err(failed("open mount point file for", subject)(errno)),
    }
    let create_flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC;
    drop(
        sys::openat2(parent, name, create_flags, 0o644, RESOLVE_INSIDE)
            .map_err(failed("create mount point file for", subject))?,
    );
    sys::openat2(parent, name, path_flags, 0, RESOLVE_INSIDE)
        .map_err(failed("open mount point file for", subject))
}

/// Moves a prepared tree onto its mount point, creating the mount point first.
fn attach<'a>(root: RawFd, mount: &'a PreparedMount) -> StepResult<'a, ()> {
    let target = match mount.kind {
        TargetKind::Directory => open_dir_creating(root, &mount.components, &mount.target)?,
        TargetKind::File => open_file_creating(root, &mount.components, &mount.target)?,
    };
    sys::move_mount(mount.tree.as_raw_fd(), target.as_raw_fd())
        .map_err(failed("bind mount at", &mount.target))
}

fn create_symlink<'a>(root: RawFd, symlink: &'a PreparedSymlink) -> StepResult<'a, ()> {
    let (parent, name) = open_parent(root, &symlink.components, &symlink.path)?;
    // SAFETY: both strings are NUL-terminated and `parent` is an open directory fd.
    let rc = unsafe { libc::symlinkat(symlink.target.as_ptr(), parent.as_raw_fd(), name.as_ptr()) };
    Errno::result(rc)
        .map(drop)
        .map_err(failed("create symlink", &symlink.path))
}

/// Writes the generated files of /etc into the root tmpfs.
fn write_etc(root: RawFd) -> StepResult<'static, ()> {
    let etc = open_dir_creating(root, &[c"etc"], "/etc")?;
    for (name, contents) in ETC_FILES {
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC;
        let file = sys::openat2(etc.as_raw_fd(), name, flags, 0o644, RESOLVE_INSIDE)
            .map_err(failed("create generated file in", "/etc"))?;
        write_all(file.as_raw_fd(), contents).map_err(failed("write generated file in", "/etc"))?;
    }
    Ok(())
}

/// Mounts a tmpfs on the directory `name` of the new root.
fn mount_tmpfs<'a>(
    root: RawFd,
    name: &CStr,
    subject: &'a str,
    flags: libc::c_ulong,
    options: &CStr,
) -> StepResult<'a, ()> {
    let dir = open_dir_creating(root, &[name], subject)?;
    let target = FdPath::new(dir.as_raw_fd());
    mount_fs(
        Some(c"tmpfs"),
        target.as_c_str(),
        Some(c"tmpfs"),
        flags,
        Some(options),
    )
    .map_err(failed("mount tmpfs at", subject))
}

fn mount_tmp<'a>(root: RawFd, options: &CStr) -> StepResult<'a, ()> {
    let flags = libc::MS_NOSUID | libc::MS_NODEV;
    mount_tmpfs(root, c"tmp", "/tmp", flags, options)
}

fn mount_state_tmpfs<'a>(root: RawFd, options: &CStr) -> StepResult<'a, ()> {
    let flags = libc::MS_NOSUID | libc::MS_NODEV;
    mount_tmpfs(root, c"state", "/state", flags, options)
}

/// Builds /dev: a tmpfs with the bound device nodes and the fd symlinks, then read-only.
fn build_dev(root: RawFd, nodes: &[PreparedMount]) -> StepResult<'_, ()> {
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount_tmpfs(root, c"dev", "/dev", flags, DEV_TMPFS_OPTIONS)?;
    for node in nodes {
        attach(root, node)?;
    }
    // The descriptor opened before the mount names the covered directory, so open /dev again.
    let dev = open_dir_creating(root, &[c"dev"], "/dev")?;
    for (name, target) in DEV_SYMLINKS {
        // SAFETY: both strings are NUL-terminated and `dev` is an open directory fd.
        let rc = unsafe { libc::symlinkat(target.as_ptr(), dev.as_raw_fd(), name.as_ptr()) };
        Errno::result(rc).map_err(failed("create symlink in", "/dev"))?;
    }
    let read_only = MountAttributes {
        set: libc::MOUNT_ATTR_RDONLY,
        propagation: 0,
        recursive: false,
    };
    sys::set_mount_attributes(dev.as_raw_fd(), read_only).map_err(failed("make read-only", "/dev"))
}

/// Mounts a fresh procfs of the new PID namespace. The host /proc is never bound instead.
fn mount_proc(root: RawFd) -> StepResult<'static, ()> {
    let dir = open_dir_creating(root, &[c"proc"], "/proc")?;
    let target = FdPath::new(dir.as_raw_fd());
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount_fs(Some(c"proc"), target.as_c_str(), Some(c"proc"), flags, None).map_err(|errno| {
        StepFailure {
            step: "cannot mount a fresh",
            subject: "/proc",
            errno,
            hint: Some("bulkhead never binds the host /proc"),
        }
    })
}

/// Makes the root tmpfs read-only, pivots into it and detaches the old root.
fn pivot(root: RawFd) -> StepResult<'static, ()> {
    let read_only = MountAttributes {
        set: libc::MOUNT_ATTR_RDONLY,
        propagation: 0,
        recursive: false,
    };
    sys::set_mount_attributes(root, read_only).map_err(failed("make read-only", "/"))?;
    // SAFETY: `root` is an open directory fd.
    Errno::result(unsafe { libc::fchdir(root) }).map_err(failed("enter the new root", ""))?;
    // pivot_root(".", ".") stacks the old root on top of the new one, so detaching "." removes
    // the old root without needing a directory for it inside the new root.
    // SAFETY: both arguments are NUL-terminated strings.
    let rc = unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) };
    Errno::result(rc).map_err(failed("pivot_root into the new root", ""))?;
    // SAFETY: the argument is a NUL-terminated string.
    let rc = unsafe { libc::umount2(c".".as_ptr(), libc::MNT_DETACH) };
    Errno::result(rc).map_err(failed("detach the old root", ""))?;
    // SAFETY: the argument is a NUL-terminated string.
    Errno::result(unsafe { libc::chdir(c"/".as_ptr()) })
        .map_err(failed("change directory to", "/"))?;
    Ok(())
}
