//! Thin wrappers over the mount and path-resolution syscalls that glibc does not wrap. Each one is a
//! single raw syscall, so the cloned child may call them before exec.

use std::ffi::{c_int, c_uint, CStr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

/// Resolution flags for paths inside the new root: stay beneath the directory fd and follow no
/// symlink, so nothing created or bound there can redirect a later step.
pub(crate) const RESOLVE_INSIDE: u64 = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS;

/// Opens `path` relative to `dirfd` with `openat2(2)`.
pub(crate) fn openat2(
    dirfd: RawFd,
    path: &CStr,
    flags: c_int,
    mode: libc::mode_t,
    resolve: u64,
) -> Result<OwnedFd, Errno> {
    // SAFETY: open_how is a plain C struct for which all zero bytes are a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = u64::from(flags.cast_unsigned());
    how.mode = u64::from(mode);
    how.resolve = resolve;
    // SAFETY: `path` is NUL-terminated and `how` is a valid open_how whose size is passed along.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    let fd = Errno::result(fd)?;
    let fd = RawFd::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: the kernel just returned `fd` as a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Clones the mount tree at `fd` into a detached tree with `open_tree(2)`, so it can be attached in
/// another mount namespace. `recursive` includes the mounts below it.
pub(crate) fn clone_tree(fd: BorrowedFd<'_>, recursive: bool) -> Result<OwnedFd, Errno> {
    let mut flags: c_uint =
        libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_EMPTY_PATH.cast_unsigned();
    if recursive {
        flags |= libc::AT_RECURSIVE.cast_unsigned();
    }
    // SAFETY: the path argument is a NUL-terminated empty string, used with AT_EMPTY_PATH.
    let tree = unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) };
    let tree = Errno::result(tree)?;
    let tree = RawFd::try_from(tree).map_err(|_| Errno::EBADF)?;
    // SAFETY: the kernel just returned `tree` as a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(tree) })
}

/// Attaches the detached tree `tree` on top of the file or directory `target`.
pub(crate) fn move_mount(tree: RawFd, target: RawFd) -> Result<(), Errno> {
    let flags = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: both path arguments are NUL-terminated empty strings, used with the EMPTY_PATH flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree,
            c"".as_ptr(),
            target,
            c"".as_ptr(),
            flags,
        )
    };
    Errno::result(rc).map(drop)
}

/// Mount attributes to set with [`set_mount_attributes`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct MountAttributes {
    /// MOUNT_ATTR_* flags to set.
    pub set: u64,
    /// MS_PRIVATE, MS_SLAVE, MS_SHARED or MS_UNBINDABLE, or 0 to leave propagation alone.
    pub propagation: u64,
    /// Applies to every mount below as well (AT_RECURSIVE).
    pub recursive: bool,
}

/// Sets attributes on the mount at `fd` with `mount_setattr(2)`.
pub(crate) fn set_mount_attributes(fd: RawFd, attributes: MountAttributes) -> Result<(), Errno> {
    let attr = libc::mount_attr {
        attr_set: attributes.set,
        attr_clr: 0,
        propagation: attributes.propagation,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH;
    if attributes.recursive {
        flags |= libc::AT_RECURSIVE;
    }
    // SAFETY: the path is a NUL-terminated empty string, used with AT_EMPTY_PATH, and `attr` is a
    // valid mount_attr whose size is passed along.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            flags,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(rc).map(drop)
}

/// A "/proc/self/fd/N" path in a fixed buffer, built without allocating.
pub(crate) struct FdPath {
    buffer: [u8; 32],
}

impl FdPath {
    const PREFIX: &'static [u8] = b"/proc/self/fd/";

    pub(crate) fn new(fd: RawFd) -> FdPath {
        let mut buffer = [0u8; 32];
        buffer[..Self::PREFIX.len()].copy_from_slice(Self::PREFIX);
        let mut digits = [0u8; 12];
        let mut count = 0;
        let mut value = fd.unsigned_abs();
        loop {
            digits[count] = b'0' + u8::try_from(value % 10).unwrap_or(0);
            count += 1;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        for (i, digit) in digits[..count].iter().rev().enumerate() {
            buffer[Self::PREFIX.len() + i] = *digit;
        }
        FdPath { buffer }
    }

    pub(crate) fn as_c_str(&self) -> &CStr {
        // The buffer is zero-filled and at most 14 + 10 bytes long, so a NUL always follows.
        CStr::from_bytes_until_nul(&self.buffer).unwrap_or(c"/proc/self/fd/")
    }
}
