//! cgroup v2 interface files: one unified hierarchy, controllers enabled per subtree.

use std::io;
use std::path::{Path, PathBuf};

use super::files::{self, LimitWrite};
use super::v1::{quota_us, CFS_PERIOD_US};
use super::{CgroupError, Controller, Limits, SPOKES_DIR};

/// Leaf that the hub's processes move into when its own cgroup must enable controllers.
pub(super) const HUB_LEAF: &str = "hub";

/// Current memory use of the cgroup and its descendants.
pub(super) const MEMORY_CURRENT_FILE: &str = "memory.current";

/// Flat keyed counters; `oom_kill` counts OOM kills in the cgroup and its descendants.
pub(super) const MEMORY_EVENTS_FILE: &str = "memory.events";

/// Writing "1" kills every process in the cgroup and its descendants (Linux 5.14 and later).
pub(super) const KILL_FILE: &str = "cgroup.kill";

/// Returns the directory under which spoke cgroups go for a hub whose cgroup is `own_dir`.
///
/// After [`prepare_parent`] moved the hub into `<dir>/hub`, `/proc/self/cgroup` names that leaf.
/// The spokes still belong beside it, under `<dir>/bulkhead`, so a leaf named `hub` with a
/// `bulkhead` sibling maps back to its parent.
pub(super) fn spokes_parent(own_dir: &Path) -> PathBuf {
    let is_hub_leaf = own_dir.file_name().is_some_and(|name| name == HUB_LEAF);
    match own_dir.parent() {
        Some(parent) if is_hub_leaf && parent.join(SPOKES_DIR).is_dir() => parent.to_owned(),
        _ => own_dir.to_owned(),
    }
}

/// Returns the controllers that `dir` may enable for its children, from `dir/cgroup.controllers`.
pub(super) fn available_controllers(dir: &Path) -> Vec<String> {
    match files::read(dir.join("cgroup.controllers")) {
        Ok(text) => text.split_whitespace().map(str::to_owned).collect(),
        Err(error) => {
            tracing::warn!(%error, "cgroup v2 controllers unreadable; treating the unified hierarchy as offering none");
            Vec::new()
        }
    }
}

/// Enables `controllers` in `base` and in `base/bulkhead`, and returns `base/bulkhead`.
///
/// The kernel refuses to enable controllers for the children of a non-root cgroup that contains
/// processes (the no-internal-processes rule, EBUSY). In that case every process of `base` moves
/// into the leaf `base/hub` first, the layout that systemd's `Delegate=yes` expects.
pub(super) fn prepare_parent(
    base: &Path,
    controllers: &[Controller],
) -> Result<PathBuf, CgroupError> {
    match enable_controllers(base, controllers) {
        Err(CgroupError::WriteFile { source, .. })
            if source.raw_os_error() == Some(libc::EBUSY) =>
        {
            move_processes_to_leaf(base)?;
            enable_controllers(base, controllers)?;
        }
        result => result?,
    }
    let parent = base.join(SPOKES_DIR);
    files::ensure_dir(&parent)?;
    enable_controllers(&parent, controllers)?;
    Ok(parent)
}

/// Writes `+name` to `dir/cgroup.subtree_control` for each controller not yet enabled there.
fn enable_controllers(dir: &Path, controllers: &[Controller]) -> Result<(), CgroupError> {
    let control = dir.join("cgroup.subtree_control");
    let enabled = files::read(&control)?;
    for controller in controllers {
        if !enabled
            .split_whitespace()
            .any(|name| name == controller.name())
        {
            files::write(&control, &format!("+{}", controller.name()))?;
        }
    }
    Ok(())
}

/// Moves every process of `dir` into `dir/hub`. A process that exits meanwhile is skipped.
fn move_processes_to_leaf(dir: &Path) -> Result<(), CgroupError> {
    let leaf = dir.join(HUB_LEAF);
    files::ensure_dir(&leaf)?;
    let leaf_procs = leaf.join("cgroup.procs");
    let pids = files::read_pids(&dir.join("cgroup.procs"));
    for pid in &pids {
        match files::write_raw(&leaf_procs, &pid.to_string()) {
            Ok(()) => {}
            Err(error) if error.raw_os_error() == Some(libc::ESRCH) => {}
            Err(source) => {
                return Err(CgroupError::WriteFile {
                    path: leaf_procs,
                    value: pid.to_string(),
                    source,
                })
            }
        }
    }
    tracing::info!(from = %dir.display(), to = %leaf.display(), count = pids.len(), "moved hub processes into a leaf cgroup");
    Ok(())
}

/// Lists the interface files to write, in order, for the controllers placed on cgroup v2.
///
/// `memory.swap.max` is set to 0 so that the memory limit also bounds swap, as
/// `memory.memsw.limit_in_bytes` does on cgroup v1; it exists only with swap accounting.
pub(super) fn limit_writes(controllers: &[Controller], limits: &Limits) -> Vec<LimitWrite> {
    let mut writes = Vec::new();
    for controller in controllers {
        match controller {
            Controller::Memory => {
                if let Some(bytes) = limits.memory_bytes {
                    writes.push(LimitWrite::required("memory.max", bytes.to_string()));
                    writes.push(LimitWrite::optional("memory.swap.max", "0"));
                }
            }
            Controller::Pids => {
                if let Some(pids) = limits.pids {
                    writes.push(LimitWrite::required("pids.max", pids.to_string()));
                }
            }
            Controller::Cpu => {
                if let Some(millis) = limits.cpu_millis {
                    let value = format!("{} {CFS_PERIOD_US}", quota_us(millis));
                    writes.push(LimitWrite::required("cpu.max", value));
                }
            }
        }
    }
    writes
}

/// Writes "1" to `dir/cgroup.kill` and returns false when the kernel lacks that file.
pub(super) fn kill_via_file(dir: &Path) -> Result<bool, CgroupError> {
    let path = dir.join(KILL_FILE);
    match files::write_raw(&path, "1") {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(CgroupError::WriteFile {
            path,
            value: "1".to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_limits_in_write_order() {
        let limits = Limits {
            memory_bytes: Some(32 << 20),
            pids: Some(5),
            cpu_millis: Some(500),
        };
        let writes = limit_writes(&Controller::ALL, &limits);
        let pairs: Vec<(&str, &str)> = writes.iter().map(|w| (w.file, w.value.as_str())).collect();
        assert_eq!(
            pairs,
            vec![
                ("memory.max", "33554432"),
                ("memory.swap.max", "0"),
                ("pids.max", "5"),
                ("cpu.max", "50000 100000"),
            ]
        );
        assert!(writes[1].optional);
    }

    #[test]
    fn spokes_parent_maps_hub_leaf_back() {
        let temp = tempfile::tempdir().expect("temp dir");
        let service = temp.path().join("bulkhead.service");
        std::fs::create_dir_all(service.join(HUB_LEAF)).expect("hub leaf");
        assert_eq!(
            spokes_parent(&service.join(HUB_LEAF)),
            service.join(HUB_LEAF)
        );

        std::fs::create_dir(service.join(SPOKES_DIR)).expect("spokes dir");
        assert_eq!(spokes_parent(&service.join(HUB_LEAF)), service);
        assert_eq!(spokes_parent(&service), service);
    }

    #[test]
    fn available_controllers_of_missing_dir_is_empty() {
        let temp = tempfile::tempdir().expect("temp dir");
        assert!(available_controllers(&temp.path().join("absent")).is_empty());
    }

    #[test]
    fn available_controllers_splits_words() {
        let temp = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            temp.path().join("cgroup.controllers"),
            "cpu io memory pids\n",
        )
        .expect("write");
        assert_eq!(
            available_controllers(temp.path()),
            vec!["cpu", "io", "memory", "pids"]
        );
    }
}
