//! Per-spoke memory, pids and CPU limits on cgroup v2 or v1, and OOM accounting.
//!
//! Each spoke gets the directory `<hub's own cgroup>/bulkhead/<name>` on every hierarchy that hosts
//! one of the memory, pids and cpu controllers. The hub's own cgroup is read from
//! `/proc/self/cgroup` and the mount points from `/proc/self/mountinfo`, so under systemd the spoke
//! cgroups land in the subtree that `Delegate=yes` hands to the service. A controller is used on
//! cgroup v2 when the unified hierarchy offers it to the hub's cgroup, and on cgroup v1 otherwise.

mod discover;
mod files;
mod spoke;
mod v1;
mod v2;

use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use spoke::{list_spoke_cgroups, remove_stale, SpokeCgroup};

/// Name of the directory under the hub's own cgroup that contains the spoke cgroups.
pub const SPOKES_DIR: &str = "bulkhead";

/// Smallest memory limit accepted, so that a typo cannot make every start an OOM kill.
pub const MIN_MEMORY_BYTES: u64 = 1 << 20;

/// Smallest CPU share accepted: 10 millis is a quota of 1 ms per 100 ms period, the kernel's
/// minimum quota.
pub const MIN_CPU_MILLIS: u32 = 10;

/// Resource limits of one spoke. `None` leaves the resource unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Memory limit in bytes, swap included.
    pub memory_bytes: Option<u64>,
    /// Maximum number of processes and threads.
    pub pids: Option<u64>,
    /// CPU time in thousandths of a CPU: 1000 is one full CPU, 500 half of one.
    pub cpu_millis: Option<u32>,
}

impl Limits {
    /// Checks each set limit against the smallest value the kernel or the spoke can work with.
    pub fn validate(&self) -> Result<(), CgroupError> {
        if let Some(bytes) = self.memory_bytes.filter(|&bytes| bytes < MIN_MEMORY_BYTES) {
            return Err(CgroupError::InvalidLimit {
                limit: "memory",
                value: bytes,
                reason: "below the minimum of 1 MiB (1048576 bytes)",
            });
        }
        if self.pids == Some(0) {
            return Err(CgroupError::InvalidLimit {
                limit: "pids",
                value: 0,
                reason: "the spoke needs at least one process",
            });
        }
        if let Some(millis) = self.cpu_millis.filter(|&millis| millis < MIN_CPU_MILLIS) {
            return Err(CgroupError::InvalidLimit {
                limit: "cpu",
                value: u64::from(millis),
                reason: "below the minimum of 10 millis (a 1 ms quota per 100 ms period)",
            });
        }
        Ok(())
    }

    fn is_set(&self, controller: Controller) -> bool {
        match controller {
            Controller::Memory => self.memory_bytes.is_some(),
            Controller::Pids => self.pids.is_some(),
            Controller::Cpu => self.cpu_millis.is_some(),
        }
    }
}

/// The cgroup controllers that spoke limits use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Controller {
    Memory,
    Pids,
    Cpu,
}

impl Controller {
    /// Every controller a spoke cgroup is placed in when the host offers it.
    pub const ALL: [Controller; 3] = [Controller::Memory, Controller::Pids, Controller::Cpu];

    /// Returns the kernel's name of the controller.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
        }
    }
}

/// The cgroup interface version of a hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    V1,
    V2,
}

/// One mounted hierarchy that the hub belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountedHierarchy {
    pub version: Version,
    pub mount_point: PathBuf,
    /// The directory under which spoke cgroups go: the hub's own cgroup, or on cgroup v2 its parent
    /// when an earlier [`SpokeCgroup::create`] moved the hub into the `hub` leaf.
    pub own_dir: PathBuf,
    /// v1: the controllers bound to the hierarchy. v2: the controllers listed in
    /// `own_dir/cgroup.controllers`, which the hub may enable for its subtree.
    pub controllers: Vec<String>,
}

/// The cgroup hierarchies the hub belongs to, as found by [`detect`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hierarchy {
    /// The cgroup2 hierarchy, when one is mounted.
    pub unified: Option<MountedHierarchy>,
    /// Every mounted cgroup v1 hierarchy.
    pub legacy: Vec<MountedHierarchy>,
}

impl Hierarchy {
    /// Returns the hierarchy that hosts `controller`: cgroup v2 when it offers the controller,
    /// else the cgroup v1 hierarchy it is bound to.
    pub fn placement(&self, controller: Controller) -> Option<&MountedHierarchy> {
        let offers =
            |mount: &&MountedHierarchy| mount.controllers.iter().any(|c| c == controller.name());
        self.unified
            .iter()
            .find(offers)
            .or_else(|| self.legacy.iter().find(offers))
    }

    /// Describes where `controller` was looked for, for error messages.
    fn search_report(&self, controller: Controller) -> String {
        let unified = match &self.unified {
            Some(mount) => format!(
                "{}/cgroup.controllers lists [{}]",
                mount.own_dir.display(),
                mount.controllers.join(" ")
            ),
            None => "no cgroup2 mount".to_owned(),
        };
        let legacy: Vec<String> = self
            .legacy
            .iter()
            .map(|mount| mount.controllers.join(","))
            .collect();
        format!(
            "{unified}; no cgroup v1 hierarchy binds {} (mounted v1 hierarchies: [{}])",
            controller.name(),
            legacy.join(" ")
        )
    }
}

/// Errors from cgroup discovery, creation, accounting and removal.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("invalid spoke cgroup name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-', not . or ..")]
    InvalidName { name: String },
    #[error("invalid {limit} limit {value}: {reason}")]
    InvalidLimit {
        limit: &'static str,
        value: u64,
        reason: &'static str,
    },
    #[error(
        "{controller} limit set but the {controller} cgroup controller is unavailable: {looked_at}; \
         enable it for the hub's cgroup (under systemd: Delegate=yes) or remove the limit"
    )]
    ControllerUnavailable {
        controller: &'static str,
        looked_at: String,
    },
    #[error("no cgroup hierarchy to place spoke {name} in: {looked_at}; mount cgroup2 or the cgroup v1 memory and pids controllers")]
    NoHierarchy { name: String, looked_at: String },
    #[error("read {path}: {source}")]
    ReadFile { path: PathBuf, source: io::Error },
    #[error("parse {path}: no {key} field in {content:?}")]
    MissingField {
        path: PathBuf,
        key: &'static str,
        content: String,
    },
    #[error("write {value:?} to {path}: {source}")]
    WriteFile {
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    #[error("create cgroup directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("kill the processes of spoke cgroup {name}: pids {remaining:?} still present after {rounds} SIGKILL rounds")]
    KillTimedOut {
        name: String,
        remaining: Vec<u32>,
        rounds: u32,
    },
    #[error("remove cgroup directory {path}: {source}")]
    RemoveDir { path: PathBuf, source: io::Error },
    #[error("{path} is not a spoke cgroup: its parent directory must be named {SPOKES_DIR}")]
    NotSpokeCgroup { path: PathBuf },
}

/// Finds the cgroup hierarchies the calling process belongs to and the controllers each offers.
pub fn detect() -> Result<Hierarchy, CgroupError> {
    let proc_cgroup = files::read("/proc/self/cgroup")?;
    let mountinfo = files::read("/proc/self/mountinfo")?;
    let memberships = discover::parse_proc_cgroup(&proc_cgroup);
    let mounts = discover::parse_mountinfo(&mountinfo);

    let mut hierarchy = Hierarchy::default();
    for located in discover::locate(&memberships, &mounts) {
        match located.version {
            Version::V2 => {
                let own_dir = v2::spokes_parent(&located.own_dir);
                let controllers = v2::available_controllers(&own_dir);
                hierarchy.unified = Some(MountedHierarchy {
                    version: Version::V2,
                    mount_point: located.mount_point,
                    own_dir,
                    controllers,
                });
            }
            Version::V1 => hierarchy.legacy.push(MountedHierarchy {
                version: Version::V1,
                mount_point: located.mount_point,
                own_dir: located.own_dir,
                controllers: located.controllers,
            }),
        }
    }
    Ok(hierarchy)
}

/// The directory a spoke gets on one hierarchy and the controllers it uses there.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PlannedDir {
    version: Version,
    /// The hub's directory on that hierarchy; the spoke goes to `base/bulkhead/<name>`.
    base: PathBuf,
    controllers: Vec<Controller>,
}

/// Decides on which hierarchies the spoke gets a directory, failing when a set limit has no
/// controller. Controllers without a limit are still used when available, for accounting.
fn plan(
    hierarchy: &Hierarchy,
    limits: &Limits,
    name: &str,
) -> Result<Vec<PlannedDir>, CgroupError> {
    let mut planned: Vec<PlannedDir> = Vec::new();
    for controller in Controller::ALL {
        let Some(mount) = hierarchy.placement(controller) else {
            if limits.is_set(controller) {
                return Err(CgroupError::ControllerUnavailable {
                    controller: controller.name(),
                    looked_at: hierarchy.search_report(controller),
                });
            }
            continue;
        };
        match planned.iter_mut().find(|dir| dir.base == mount.own_dir) {
            Some(dir) => dir.controllers.push(controller),
            None => planned.push(PlannedDir {
                version: mount.version,
                base: mount.own_dir.clone(),
                controllers: vec![controller],
            }),
        }
    }
    if planned.is_empty() {
        // Without any controller a cgroup v2 directory still tracks and kills the processes.
        let unified = hierarchy
            .unified
            .as_ref()
            .ok_or_else(|| CgroupError::NoHierarchy {
                name: name.to_owned(),
                looked_at: hierarchy.search_report(Controller::Pids),
            })?;
        planned.push(PlannedDir {
            version: Version::V2,
            base: unified.own_dir.clone(),
            controllers: Vec::new(),
        });
    }
    Ok(planned)
}

/// Checks that a spoke name is a single safe path component.
fn validate_name(name: &str) -> Result<(), CgroupError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let valid = !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name.chars().all(allowed);
    if valid {
        Ok(())
    } else {
        Err(CgroupError::InvalidName {
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests;
