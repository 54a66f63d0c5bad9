//! Facts about the machine the bench ran on, and process memory from /proc.

use std::fs;

use anyhow::{anyhow, Context, Result};

/// Controllers that spoke limits use, in the order the report lists them.
const LIMIT_CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

/// The machine, as the report describes it.
#[derive(Debug, Clone)]
pub struct MachineInfo {
    /// The first `model name` in /proc/cpuinfo.
    pub cpu_model: String,
    /// CPUs this process may run on, as `nproc` counts them.
    pub cpus: usize,
    /// `MemTotal` from /proc/meminfo, in KiB.
    pub memory_kib: u64,
    /// The kernel release, as `uname -r` prints it.
    pub kernel: String,
    /// Description of the cgroup version that serves the memory, pids and cpu controllers.
    pub cgroups: String,
}

impl MachineInfo {
    /// Reads /proc and /sys. A fact that cannot be read becomes "unknown" with the reason.
    pub fn collect() -> MachineInfo {
        let cpu_model = read_proc("/proc/cpuinfo")
            .and_then(|text| parse_cpu_model(&text).ok_or_else(|| anyhow!("no model name line")));
        let memory_kib = read_proc("/proc/meminfo").and_then(|text| {
            parse_kib_field(&text, "MemTotal").ok_or_else(|| anyhow!("no MemTotal"))
        });
        let kernel = read_proc("/proc/sys/kernel/osrelease").map(|text| text.trim().to_string());
        let cgroups = read_proc("/proc/self/mountinfo").map(|text| {
            let mounts = parse_cgroup_mounts(&text);
            let v2_controllers = mounts
                .v2_mount
                .as_ref()
                .and_then(|path| fs::read_to_string(format!("{path}/cgroup.controllers")).ok())
                .unwrap_or_default();
            describe_cgroups(&mounts, &v2_controllers)
        });

        MachineInfo {
            cpu_model: cpu_model.unwrap_or_else(|err| format!("unknown ({err:#})")),
            cpus: allowed_cpus(),
            memory_kib: memory_kib.unwrap_or(0),
            kernel: kernel.unwrap_or_else(|err| format!("unknown ({err:#})")),
            cgroups: cgroups.unwrap_or_else(|err| format!("unknown ({err:#})")),
        }
    }
}

/// Returns the resident set size (`VmRSS`) of process `pid`, in KiB.
pub fn vm_rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = read_proc(&path)?;
    parse_kib_field(&status, "VmRSS").ok_or_else(|| {
        anyhow!("{path}: no VmRSS line; the process may be a zombie or a kernel thread")
    })
}

fn read_proc(path: &str) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("failed to read {path}"))
}

/// Counts the CPUs in this process's affinity mask, which is what `nproc` prints.
fn allowed_cpus() -> usize {
    // SAFETY: cpu_set_t is a plain bit array, so all zeroes is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live, writable cpu_set_t and the size passed is exactly its size.
    let result =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if result != 0 {
        return std::thread::available_parallelism().map_or(1, usize::from);
    }
    // SAFETY: `set` was filled in by sched_getaffinity above.
    let count = unsafe { libc::CPU_COUNT(&set) };
    usize::try_from(count).unwrap_or(1)
}

fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim() == "model name")
        .map(|(_, value)| value.trim().to_string())
}

/// Reads a `Key:   123 kB` line of /proc/meminfo or /proc/PID/status.
fn parse_kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| *name == key)
        .and_then(|(_, value)| value.split_whitespace().next()?.parse().ok())
}

/// The cgroup file systems mounted in this process's mount namespace.
#[derive(Debug, Default, PartialEq, Eq)]
struct CgroupMounts {
    /// Controllers of every cgroup v1 mount, such as "memory" or "pids".
    v1_controllers: Vec<String>,
    /// Mount point of cgroup2, if it is mounted.
    v2_mount: Option<String>,
}

/// Finds the cgroup mounts in /proc/self/mountinfo text.
fn parse_cgroup_mounts(mountinfo: &str) -> CgroupMounts {
    let mut mounts = CgroupMounts::default();
    for line in mountinfo.lines() {
        // Fields before " - " are per-mount, and the mount point is the fifth. After it come the
        // file system type, the source and the super block options.
        let Some((mount_fields, fs_fields)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount_point) = mount_fields.split(' ').nth(4) else {
            continue;
        };
        let mut fs_fields = fs_fields.split(' ');
        let fs_type = fs_fields.next().unwrap_or_default();
        let options = fs_fields.nth(1).unwrap_or_default();
        match fs_type {
            "cgroup2" if mounts.v2_mount.is_none() => {
                mounts.v2_mount = Some(mount_point.to_string())
            }
            "cgroup" => {
                let controllers = options
                    .split(',')
                    .filter(|option| !matches!(*option, "rw" | "ro") && !option.contains('='));
                mounts
                    .v1_controllers
                    .extend(controllers.map(str::to_string));
            }
            _ => {}
        }
    }
    mounts
}

/// Says which version serves each limit controller, given the cgroup2 mount's
/// `cgroup.controllers` text.
fn describe_cgroups(mounts: &CgroupMounts, v2_controllers: &str) -> String {
    let v2: Vec<&str> = v2_controllers.split_whitespace().collect();
    let on_v2: Vec<&str> = LIMIT_CONTROLLERS
        .into_iter()
        .filter(|name| v2.contains(name))
        .collect();
    let on_v1: Vec<&str> = LIMIT_CONTROLLERS
        .into_iter()
        .filter(|name| !on_v2.contains(name) && mounts.v1_controllers.iter().any(|c| c == name))
        .collect();

    match (&mounts.v2_mount, on_v1.is_empty()) {
        (None, true) => "no cgroup controllers mounted".to_string(),
        (None, false) => format!("v1 ({})", on_v1.join(", ")),
        (Some(path), true) => format!("v2 (cgroup2 at {path}, controllers: {})", v2.join(" ")),
        (Some(path), false) => {
            let offered = if v2.is_empty() {
                "no controllers".to_string()
            } else {
                v2.join(" ")
            };
            let mut text = format!("v1 for {}", on_v1.join(", "));
            if !on_v2.is_empty() {
                text.push_str(&format!(", v2 for {}", on_v2.join(", ")));
            }
            text.push_str(&format!(
                " (hybrid layout: cgroup2 at {path} offers {offered})"
            ));
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn cpu_model_from_cpuinfo() {
        let text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(parse_cpu_model(text).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(parse_cpu_model("processor\t: 0\n"), None);
    }

    #[test]
    fn kib_fields() {
        let status = "Name:\tbulkheadd\nVmPeak:\t  20000 kB\nVmRSS:\t   12345 kB\n";
        assert_eq!(parse_kib_field(status, "VmRSS"), Some(12345));
        assert_eq!(
            parse_kib_field("MemTotal:       24683784 kB\n", "MemTotal"),
            Some(24_683_784)
        );
        assert_eq!(parse_kib_field(status, "VmSwap"), None);
    }

    #[test]
    fn hybrid_mounts_parsed() {
        let mounts = parse_cgroup_mounts(HYBRID_MOUNTINFO);
        assert_eq!(mounts.v1_controllers, ["cpu", "memory", "pids"]);
        assert_eq!(mounts.v2_mount.as_deref(), Some("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn hybrid_without_v2_controllers() {
        let mounts = parse_cgroup_mounts(HYBRID_MOUNTINFO);
        assert_eq!(
            describe_cgroups(&mounts, "hugetlb\n"),
            "v1 for memory, pids, cpu (hybrid layout: cgroup2 at /sys/fs/cgroup/unified offers hugetlb)"
        );
        assert!(describe_cgroups(&mounts, "").ends_with("offers no controllers)"));
    }

    #[test]
    fn hybrid_with_some_v2_controllers() {
        let mounts = parse_cgroup_mounts(HYBRID_MOUNTINFO);
        assert_eq!(
            describe_cgroups(&mounts, "cpu pids"),
            "v1 for memory, v2 for pids, cpu (hybrid layout: cgroup2 at /sys/fs/cgroup/unified \
             offers cpu pids)"
        );
    }

    #[test]
    fn unified_layout() {
        let mounts =
            parse_cgroup_mounts("25 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
        assert_eq!(
            describe_cgroups(&mounts, "cpuset cpu io memory pids"),
            "v2 (cgroup2 at /sys/fs/cgroup, controllers: cpuset cpu io memory pids)"
        );
    }

    #[test]
    fn v1_only_and_none() {
        let v1 = "32 31 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert_eq!(
            describe_cgroups(&parse_cgroup_mounts(v1), ""),
            "v1 (memory)"
        );
        assert_eq!(
            describe_cgroups(&parse_cgroup_mounts(""), ""),
            "no cgroup controllers mounted"
        );
    }

    #[test]
    fn own_rss_is_positive() {
        let rss = vm_rss_kib(std::process::id()).expect("this process has a VmRSS line");
        assert!(rss > 0);
    }
}
