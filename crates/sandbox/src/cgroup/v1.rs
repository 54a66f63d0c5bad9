//! cgroup v1 interface files: one hierarchy per controller (or per group of co-mounted controllers).

use std::path::{Path, PathBuf};

use super::files::{self, LimitWrite};
use super::{CgroupError, Controller, Limits, SPOKES_DIR};

/// The CFS period used for CPU quotas, in microseconds (100 ms, the kernel's default).
pub(super) const CFS_PERIOD_US: u64 = 100_000;

/// Current memory use, page cache included.
pub(super) const MEMORY_USAGE_FILE: &str = "memory.usage_in_bytes";

/// Holds the `oom_kill` counter (Linux 4.13 and later).
pub(super) const OOM_CONTROL_FILE: &str = "memory.oom_control";

/// Creates `base/bulkhead` and returns it. cgroup v1 has no controllers to enable along the way.
pub(super) fn prepare_parent(base: &Path) -> Result<PathBuf, CgroupError> {
    let parent = base.join(SPOKES_DIR);
    files::ensure_dir(&parent)?;
    Ok(parent)
}

/// Lists the interface files to write, in order, for the controllers of one hierarchy.
///
/// `memory.memsw.limit_in_bytes` caps memory plus swap. It must be written after
/// `memory.limit_in_bytes`, because the kernel rejects a memsw limit below the memory limit, and it
/// exists only with swap accounting, so it is optional.
pub(super) fn limit_writes(controllers: &[Controller], limits: &Limits) -> Vec<LimitWrite> {
    let mut writes = Vec::new();
    for controller in controllers {
        match controller {
            Controller::Memory => {
                if let Some(bytes) = limits.memory_bytes {
                    writes.push(LimitWrite::required(
                        "memory.limit_in_bytes",
                        bytes.to_string(),
                    ));
                    writes.push(LimitWrite::optional(
                        "memory.memsw.limit_in_bytes",
                        bytes.to_string(),
                    ));
                }
            }
            Controller::Pids => {
                if let Some(pids) = limits.pids {
                    writes.push(LimitWrite::required("pids.max", pids.to_string()));
                }
            }
            Controller::Cpu => {
                if let Some(millis) = limits.cpu_millis {
                    writes.push(LimitWrite::required(
                        "cpu.cfs_period_us",
                        CFS_PERIOD_US.to_string(),
                    ));
                    writes.push(LimitWrite::required(
                        "cpu.cfs_quota_us",
                        quota_us(millis).to_string(),
                    ));
                }
            }
        }
    }
    writes
}

/// Converts thousandths of a CPU into microseconds of runtime per [`CFS_PERIOD_US`].
pub(super) fn quota_us(cpu_millis: u32) -> u64 {
    u64::from(cpu_millis) * CFS_PERIOD_US / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_and_values(writes: &[LimitWrite]) -> Vec<(&str, &str)> {
        writes.iter().map(|w| (w.file, w.value.as_str())).collect()
    }

    #[test]
    fn all_limits_in_write_order() {
        let limits = Limits {
            memory_bytes: Some(64 << 20),
            pids: Some(32),
            cpu_millis: Some(1500),
        };
        let writes = limit_writes(&Controller::ALL, &limits);
        assert_eq!(
            files_and_values(&writes),
            vec![
                ("memory.limit_in_bytes", "67108864"),
                ("memory.memsw.limit_in_bytes", "67108864"),
                ("pids.max", "32"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "150000"),
            ]
        );
        assert!(writes[1].optional);
        assert!(!writes[0].optional);
    }

    #[test]
    fn unset_limits_write_nothing() {
        assert!(limit_writes(&Controller::ALL, &Limits::default()).is_empty());
    }

    #[test]
    fn only_listed_controllers_are_written() {
        let limits = Limits {
            memory_bytes: Some(1 << 30),
            pids: Some(8),
            cpu_millis: Some(250),
        };
        let writes = limit_writes(&[Controller::Pids], &limits);
        assert_eq!(files_and_values(&writes), vec![("pids.max", "8")]);
    }

    #[test]
    fn quota_scales_with_millis() {
        assert_eq!(quota_us(10), 1_000);
        assert_eq!(quota_us(1000), 100_000);
        assert_eq!(quota_us(u32::MAX), 429_496_729_500);
    }
}
