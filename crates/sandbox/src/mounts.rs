//! The spoke's filesystem: a mount plan as plain data, its validation, and its application.
//!
//! The plan names host paths to bind read-only (or read-write) into the sandbox and symlinks to
//! recreate there. The launcher opens every source on the host side without following symlinks
//! ([`prepare`]), and the cloned child builds a new root on tmpfs from those descriptors ([`apply`]).

pub(crate) mod apply;
pub(crate) mod prepare;
pub(crate) mod sys;
#[cfg(test)]
mod tests;
mod validate;

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use validate::{GENERATED_ETC_FILES, GENERATED_TARGETS, RESERVED_PREFIXES};

/// Default size of the sandbox's /tmp tmpfs, and of /state when the plan has no state directory.
pub const DEFAULT_TMP_SIZE_BYTES: u64 = 64 << 20;

/// The filesystem of one spoke: what to bind from the host and which symlinks to recreate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountPlan {
    /// Host paths bound into the sandbox, sorted so that parents come before children.
    pub binds: Vec<Bind>,
    /// Symlinks created in the new root, such as /lib -> usr/lib on merged-usr systems.
    pub symlinks: Vec<Symlink>,
    /// Host directory bound read-write at /state. With `None`, /state is a fresh tmpfs.
    pub state_dir: Option<PathBuf>,
    /// Size limit of /tmp (and of a tmpfs /state), in bytes. Must be above zero.
    pub tmp_size_bytes: u64,
}

/// One bind mount of a host path into the sandbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Bind {
    /// Absolute host path, opened without following symlinks in any component.
    pub source: PathBuf,
    /// Absolute path inside the sandbox.
    pub target: PathBuf,
    /// Read-write when true, read-only otherwise. Binds are always nosuid and nodev.
    #[serde(default)]
    pub writable: bool,
    /// When true, a missing source is skipped instead of failing the start.
    #[serde(default)]
    pub optional: bool,
}

/// One symlink created in the new root.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Symlink {
    /// Absolute path of the link inside the sandbox.
    pub path: PathBuf,
    /// Link text, stored as is and resolved inside the sandbox.
    pub target: PathBuf,
}

/// Errors from building, validating and preparing a mount plan.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("{role} {path}: not an absolute path; name it from /")]
    NotAbsolute { role: &'static str, path: PathBuf },
    #[error("{role} {path}: contains a `.` or `..` component; name the normalized path")]
    NotNormalized { role: &'static str, path: PathBuf },
    #[error("{role} {path}: contains a NUL byte")]
    NulByte { role: &'static str, path: PathBuf },
    #[error("target {path}: / is the generated root and cannot be a mount target")]
    RootTarget { path: PathBuf },
    #[error("target {path}: lies under {prefix}, which the sandbox never takes from the host")]
    ReservedTarget { path: PathBuf, prefix: &'static str },
    #[error("target {path}: the sandbox generates this path itself; remove the bind or symlink")]
    GeneratedTarget { path: PathBuf },
    #[error("target {path}: named by more than one bind or symlink; keep one")]
    DuplicateTarget { path: PathBuf },
    #[error("target {path}: lies under the symlink {symlink}; name the path behind the link")]
    TargetUnderSymlink { path: PathBuf, symlink: PathBuf },
    #[error("symlink {path}: lies under the bind target {bind}, which would hide it")]
    SymlinkUnderBind { path: PathBuf, bind: PathBuf },
    #[error("tmp_size_bytes is 0, which tmpfs reads as unlimited; set a size in bytes")]
    ZeroTmpSize,
    #[error("system path {path}: {source}")]
    InspectSystemPath { path: PathBuf, source: io::Error },
    #[error("system path {path}: lies under the symlink {symlink}; name the path behind the link")]
    SystemPathUnderSymlink { path: PathBuf, symlink: PathBuf },
    #[error("read symlink {path}: {source}")]
    ReadLink { path: PathBuf, source: io::Error },
    #[error("mount source {path}: not found; create it or mark the bind optional")]
    SourceMissing { path: PathBuf },
    #[error("mount source {path}: contains a symlink at {symlink}; name the resolved path")]
    SourceSymlink { path: PathBuf, symlink: PathBuf },
    #[error("open mount source {path}: {source}")]
    OpenSource { path: PathBuf, source: io::Error },
    #[error("inspect mount source {path}: {source}")]
    StatSource { path: PathBuf, source: io::Error },
    #[error("clone mount tree of {path}: {source}")]
    CloneTree { path: PathBuf, source: io::Error },
    #[error("set mount attributes on {path}: {source}")]
    SetAttributes { path: PathBuf, source: io::Error },
}

impl MountPlan {
    /// Builds the system part of a plan: a read-only optional bind for each of `system_paths` that
    /// exists on the host, or a [`Symlink`] with the same text when the host path is itself a
    /// symlink. Paths missing on the host are left out.
    pub fn with_system_paths(system_paths: &[PathBuf]) -> Result<MountPlan, MountError> {
        let mut plan = MountPlan {
            binds: Vec::new(),
            symlinks: Vec::new(),
            state_dir: None,
            tmp_size_bytes: DEFAULT_TMP_SIZE_BYTES,
        };
        for path in system_paths {
            validate::check_path("system path", path)?;
            if let Some(symlink) = validate::first_symlink_component(path, false) {
                return Err(MountError::SystemPathUnderSymlink {
                    path: path.clone(),
                    symlink,
                });
            }
            let metadata = match std::fs::symlink_metadata(path) {
                Ok(metadata) => metadata,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(MountError::InspectSystemPath {
                        path: path.clone(),
                        source,
                    })
                }
            };
            if metadata.file_type().is_symlink() {
                let target = std::fs::read_link(path).map_err(|source| MountError::ReadLink {
                    path: path.clone(),
                    source,
                })?;
                plan.add_symlink(Symlink {
                    path: path.clone(),
                    target,
                })?;
            } else {
                plan.add_bind(Bind {
                    source: path.clone(),
                    target: path.clone(),
                    writable: false,
                    optional: true,
                })?;
            }
        }
        Ok(plan)
    }

    /// Adds a bind after checking it against the plan, keeping parents before children.
    pub fn add_bind(&mut self, bind: Bind) -> Result<(), MountError> {
        validate::check_bind(&bind)?;
        validate::check_bind_target_free(self, &bind.target)?;
        let position = self.binds.partition_point(|b| b.target < bind.target);
        self.binds.insert(position, bind);
        Ok(())
    }

    /// Adds a symlink after checking it against the plan.
    pub fn add_symlink(&mut self, symlink: Symlink) -> Result<(), MountError> {
        validate::check_symlink(&symlink)?;
        validate::check_symlink_path_free(self, &symlink.path)?;
        let position = self.symlinks.partition_point(|s| s.path < symlink.path);
        self.symlinks.insert(position, symlink);
        Ok(())
    }

    /// Checks the whole plan, as received from another process, with the rules of
    /// [`add_bind`](Self::add_bind) and [`add_symlink`](Self::add_symlink).
    pub fn validate(&self) -> Result<(), MountError> {
        let mut rebuilt = MountPlan {
            binds: Vec::new(),
            symlinks: Vec::new(),
            state_dir: None,
            tmp_size_bytes: self.tmp_size_bytes,
        };
        for symlink in &self.symlinks {
            rebuilt.add_symlink(symlink.clone())?;
        }
        for bind in &self.binds {
            rebuilt.add_bind(bind.clone())?;
        }
        if let Some(state_dir) = &self.state_dir {
            validate::check_path("state directory", state_dir)?;
        }
        if self.tmp_size_bytes == 0 {
            return Err(MountError::ZeroTmpSize);
        }
        Ok(())
    }

    /// Returns the binds sorted so that every parent target comes before its children.
    pub fn sorted_binds(&self) -> Vec<&Bind> {
        let mut binds: Vec<&Bind> = self.binds.iter().collect();
        binds.sort_by(|a, b| a.target.cmp(&b.target));
        binds
    }

    /// Returns the symlink whose path is `path` or one of its ancestors, if any.
    pub fn symlink_covering(&self, path: &Path) -> Option<&Symlink> {
        self.symlinks.iter().find(|s| path.starts_with(&s.path))
    }
}
