//! Path rules for mount plans. Pure checks on path text, except for the symlink lookups that
//! [`first_symlink_component`] does on the host.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Bind, MountError, MountPlan, Symlink};

/// Sandbox paths that never come from the host: a target equal to or under one is rejected.
pub const RESERVED_PREFIXES: [&str; 3] = ["/proc", "/dev", "/sys"];

/// Sandbox paths that the launcher mounts or writes itself. A target may not equal one, and may not
/// lie under /tmp or /state either, because their tmpfs or state mount would hide it.
pub const GENERATED_TARGETS: [&str; 3] = ["/tmp", "/state", "/etc"];

/// Files that the launcher writes into the sandbox's /etc.
pub const GENERATED_ETC_FILES: [&str; 4] = [
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/nsswitch.conf",
];

/// Sandbox directories whose whole subtree the launcher mounts over.
const GENERATED_SUBTREES: [&str; 2] = ["/tmp", "/state"];

/// Checks that `path` is absolute, normalized and free of NUL bytes.
pub(crate) fn check_path(role: &'static str, path: &Path) -> Result<(), MountError> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.contains(&0) {
        return Err(MountError::NulByte {
            role,
            path: path.to_path_buf(),
        });
    }
    if !path.is_absolute() {
        return Err(MountError::NotAbsolute {
            role,
            path: path.to_path_buf(),
        });
    }
    // Path::components() drops inner `.` components, so the raw bytes are checked instead.
    let has_dot_component = bytes
        .split(|&b| b == b'/')
        .any(|component| component == b"." || component == b"..");
    if has_dot_component {
        return Err(MountError::NotNormalized {
            role,
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Checks that `target` may receive a bind or symlink: not /, not reserved, not generated.
fn check_target(target: &Path) -> Result<(), MountError> {
    if target == Path::new("/") {
        return Err(MountError::RootTarget {
            path: target.to_path_buf(),
        });
    }
    if let Some(prefix) = RESERVED_PREFIXES
        .iter()
        .find(|prefix| target.starts_with(prefix))
    {
        return Err(MountError::ReservedTarget {
            path: target.to_path_buf(),
            prefix,
        });
    }
    let generated = GENERATED_TARGETS.iter().any(|g| target == Path::new(g))
        || GENERATED_ETC_FILES.iter().any(|g| target == Path::new(g))
        || GENERATED_SUBTREES.iter().any(|g| target.starts_with(g));
    if generated {
        return Err(MountError::GeneratedTarget {
            path: target.to_path_buf(),
        });
    }
    Ok(())
}

pub(crate) fn check_bind(bind: &Bind) -> Result<(), MountError> {
    check_path("mount source", &bind.source)?;
    check_path("target", &bind.target)?;
    check_target(&bind.target)
}

pub(crate) fn check_symlink(symlink: &Symlink) -> Result<(), MountError> {
    check_path("symlink", &symlink.path)?;
    check_target(&symlink.path)?;
    if symlink.target.as_os_str().as_bytes().contains(&0) {
        return Err(MountError::NulByte {
            role: "symlink target",
            path: symlink.target.clone(),
        });
    }
    Ok(())
}

/// Rejects `path` when a bind or symlink of `plan` already uses it.
fn check_unique(plan: &MountPlan, path: &Path) -> Result<(), MountError> {
    let taken =
        plan.binds.iter().any(|b| b.target == path) || plan.symlinks.iter().any(|s| s.path == path);
    if taken {
        return Err(MountError::DuplicateTarget {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Checks a new bind target against the binds and symlinks already in `plan`.
pub(crate) fn check_bind_target_free(plan: &MountPlan, target: &Path) -> Result<(), MountError> {
    check_unique(plan, target)?;
    if let Some(symlink) = plan.symlink_covering(target) {
        return Err(MountError::TargetUnderSymlink {
            path: target.to_path_buf(),
            symlink: symlink.path.clone(),
        });
    }
    if let Some(symlink) = plan.symlinks.iter().find(|s| s.path.starts_with(target)) {
        return Err(MountError::SymlinkUnderBind {
            path: symlink.path.clone(),
            bind: target.to_path_buf(),
        });
    }
    Ok(())
}

/// Checks a new symlink path against the binds and symlinks already in `plan`.
pub(crate) fn check_symlink_path_free(plan: &MountPlan, path: &Path) -> Result<(), MountError> {
    check_unique(plan, path)?;
    if let Some(symlink) = plan.symlink_covering(path) {
        return Err(MountError::TargetUnderSymlink {
            path: path.to_path_buf(),
            symlink: symlink.path.clone(),
        });
    }
    if let Some(symlink) = plan.symlinks.iter().find(|s| s.path.starts_with(path)) {
        return Err(MountError::TargetUnderSymlink {
            path: symlink.path.clone(),
            symlink: path.to_path_buf(),
        });
    }
    if let Some(bind) = plan.binds.iter().find(|b| path.starts_with(&b.target)) {
        return Err(MountError::SymlinkUnderBind {
            path: path.to_path_buf(),
            bind: bind.target.clone(),
        });
    }
    if let Some(bind) = plan.binds.iter().find(|b| b.target.starts_with(path)) {
        return Err(MountError::TargetUnderSymlink {
            path: bind.target.clone(),
            symlink: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Returns the first component of `path`, from the root down, that is a symlink on the host.
/// The last component is included only when `include_self` is true.
pub(crate) fn first_symlink_component(path: &Path, include_self: bool) -> Option<PathBuf> {
    let mut ancestors: Vec<&Path> = path.ancestors().collect();
    ancestors.reverse();
    if !include_self {
        ancestors.pop();
    }
    ancestors
        .into_iter()
        .find(|ancestor| {
            std::fs::symlink_metadata(ancestor).is_ok_and(|m| m.file_type().is_symlink())
        })
        .map(Path::to_path_buf)
}
