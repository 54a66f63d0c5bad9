//! Host side of the mount plan: opens every source before the clone, as root on the host, without
//! following symlinks, and clones it into a detached mount tree.
//!
//! A bind through "/proc/self/fd/N" fails with EINVAL when N belongs to the host's mount namespace,
//! because the kernel only binds mounts of the caller's own namespace. A detached tree from
//! `open_tree(OPEN_TREE_CLONE)` belongs to no namespace yet, so the child can attach it with
//! `move_mount`. Later mounts over the source path in either namespace do not change the tree.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::fstat;

use super::sys::{self, MountAttributes};
use super::validate::first_symlink_component;
use super::{MountError, MountPlan};

/// Device nodes bound from the host into the sandbox's /dev.
pub const DEV_NODES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];

/// Size option of the tmpfs that becomes the new root. It holds only mount points and /etc.
pub(crate) const ROOT_TMPFS_OPTIONS: &CStr = c"mode=0755,size=1m";
/// Size option of the /dev tmpfs, which holds only mount points and symlinks.
pub(crate) const DEV_TMPFS_OPTIONS: &CStr = c"mode=0755,size=64k";

/// What kind of mount point a bind needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetKind {
    Directory,
    /// A regular file, device node or other non-directory.
    File,
}

/// A detached mount tree and where it goes in the new root.
#[derive(Debug)]
pub(crate) struct PreparedMount {
    /// Absolute sandbox path, for messages.
    pub target: String,
    /// Components of the target relative to the new root.
    pub components: Vec<CString>,
    pub kind: TargetKind,
    pub tree: OwnedFd,
}

/// A symlink to create in the new root.
#[derive(Debug)]
pub(crate) struct PreparedSymlink {
    pub path: String,
    pub components: Vec<CString>,
    pub target: CString,
}

/// Everything the child needs to build its root, opened and encoded before the clone so that the
/// child only issues syscalls.
#[derive(Debug)]
pub(crate) struct PreparedRoot {
    pub binds: Vec<PreparedMount>,
    pub symlinks: Vec<PreparedSymlink>,
    /// The state directory's tree, or `None` for a tmpfs /state.
    pub state: Option<PreparedMount>,
    pub dev_nodes: Vec<PreparedMount>,
    /// tmpfs options of /tmp.
    pub tmp_options: CString,
    /// tmpfs options of /state when there is no state directory.
    pub state_tmpfs_options: CString,
}

/// Opens and clones every source of `plan`. Missing optional sources are skipped.
pub(crate) fn prepare_root(plan: &MountPlan) -> Result<PreparedRoot, MountError> {
    plan.validate()?;

    let mut binds = Vec::with_capacity(plan.binds.len());
    for bind in plan.sorted_binds() {
        let Some(source) = open_source(&bind.source, bind.optional)? else {
            tracing::debug!(source = %bind.source.display(), "optional mount source missing; skipped");
            continue;
        };
        let read_only = if bind.writable {
            0
        } else {
            libc::MOUNT_ATTR_RDONLY
        };
        let attributes = MountAttributes {
            set: read_only | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV,
            propagation: libc::MS_PRIVATE,
            recursive: true,
        };
        binds.push(detach(&bind.source, &bind.target, source, attributes)?);
    }

    let symlinks = plan
        .symlinks
        .iter()
        .map(|symlink| PreparedSymlink {
            path: symlink.path.display().to_string(),
            components: relative_components(&symlink.path),
            target: c_string(symlink.target.as_os_str()),
        })
        .collect();

    let state = match &plan.state_dir {
        Some(state_dir) => Some(prepare_state(state_dir)?),
        None => None,
    };

    Ok(PreparedRoot {
        binds,
        symlinks,
        state,
        dev_nodes: prepare_dev_nodes()?,
        tmp_options: tmpfs_options("1777", plan.tmp_size_bytes),
        state_tmpfs_options: tmpfs_options("0755", plan.tmp_size_bytes),
    })
}

/// Opens `path` as O_PATH without following a symlink in any component. Returns `None` for a
/// missing optional source.
pub(crate) fn open_source(path: &Path, optional: bool) -> Result<Option<OwnedFd>, MountError> {
    let c_path = c_string(path.as_os_str());
    let flags = libc::O_PATH | libc::O_CLOEXEC;
    match sys::openat2(libc::AT_FDCWD, &c_path, flags, 0, libc::RESOLVE_NO_SYMLINKS) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) if optional => Ok(None),
        Err(Errno::ENOENT) => Err(MountError::SourceMissing {
            path: path.to_path_buf(),
        }),
        Err(Errno::ELOOP) => Err(MountError::SourceSymlink {
            path: path.to_path_buf(),
            symlink: first_symlink_component(path, true).unwrap_or_else(|| path.to_path_buf()),
        }),
        Err(errno) => Err(MountError::OpenSource {
            path: path.to_path_buf(),
            source: io::Error::from(errno),
        }),
    }
}

fn prepare_state(state_dir: &Path) -> Result<PreparedMount, MountError> {
    let source = open_source(state_dir, false)?.ok_or_else(|| MountError::SourceMissing {
        path: state_dir.to_path_buf(),
    })?;
    let attributes = MountAttributes {
        set: libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV,
        propagation: libc::MS_PRIVATE,
        recursive: true,
    };
    let mount = detach(state_dir, Path::new("/state"), source, attributes)?;
    if mount.kind != TargetKind::Directory {
        return Err(MountError::OpenSource {
            path: state_dir.to_path_buf(),
            source: io::Error::from(Errno::ENOTDIR),
        });
    }
    Ok(mount)
}

fn prepare_dev_nodes() -> Result<Vec<PreparedMount>, MountError> {
    // Device nodes keep dev access, so they get nosuid and noexec but not nodev.
    let attributes = MountAttributes {
        set: libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOEXEC,
        propagation: libc::MS_PRIVATE,
        recursive: false,
    };
    DEV_NODES
        .iter()
        .map(|name| {
            let host = PathBuf::from(format!("/dev/{name}"));
            let source = open_source(&host, false)?
                .ok_or_else(|| MountError::SourceMissing { path: host.clone() })?;
            detach(&host, &host, source, attributes)
        })
        .collect()
}

/// Clones the tree at `source` and sets its attributes while it is still detached.
fn detach(
    source_path: &Path,
    target: &Path,
    source: OwnedFd,
    attributes: MountAttributes,
) -> Result<PreparedMount, MountError> {
    let stat = fstat(source.as_fd()).map_err(|errno| MountError::StatSource {
        path: source_path.to_path_buf(),
        source: io::Error::from(errno),
    })?;
    let kind = if (stat.st_mode & libc::S_IFMT) == libc::S_IFDIR {
        TargetKind::Directory
    } else {
        TargetKind::File
    };

    let tree = sys::clone_tree(source.as_fd(), attributes.recursive).map_err(|errno| {
        MountError::CloneTree {
            path: source_path.to_path_buf(),
            source: io::Error::from(errno),
        }
    })?;
    sys::set_mount_attributes(tree.as_raw_fd(), attributes).map_err(|errno| {
        MountError::SetAttributes {
            path: source_path.to_path_buf(),
            source: io::Error::from(errno),
        }
    })?;

    Ok(PreparedMount {
        target: target.display().to_string(),
        components: relative_components(target),
        kind,
        tree,
    })
}

/// Splits an absolute, validated path into NUL-terminated components below /.
pub(crate) fn relative_components(path: &Path) -> Vec<CString> {
    path.components()
        .filter_map(|component| match component {
            std::path::Component::Normal(name) => Some(c_string(name)),
            _ => None,
        })
        .collect()
}

/// Converts validated text to a C string. Validation has rejected NUL bytes, so none are left to
/// strip here.
fn c_string(text: &OsStr) -> CString {
    let bytes: Vec<u8> = text
        .as_bytes()
        .iter()
        .copied()
        .filter(|&b| b != 0)
        .collect();
    CString::new(bytes).unwrap_or_default()
}

fn tmpfs_options(mode: &str, size_bytes: u64) -> CString {
    c_string(OsStr::new(&format!("mode={mode},size={size_bytes}")))
}
