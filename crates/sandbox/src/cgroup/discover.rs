//! Finds the hub's own cgroup on each hierarchy from `/proc/self/cgroup` and `/proc/self/mountinfo`.
//!
//! The parsers are pure functions over the file contents, so they are tested with captured text.

use std::path::{Path, PathBuf};

use super::Version;

/// One line of `/proc/self/cgroup`: `hierarchy-id:controller-list:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Membership {
    pub hierarchy_id: u32,
    /// Controllers bound to a v1 hierarchy (`cpu,cpuacct`, `name=systemd`); empty for cgroup v2.
    pub controllers: Vec<String>,
    /// Path of the process's cgroup, relative to the hierarchy root (or the cgroup namespace root).
    pub path: PathBuf,
}

impl Membership {
    pub fn is_unified(&self) -> bool {
        self.hierarchy_id == 0 && self.controllers.is_empty()
    }
}

/// One cgroup or cgroup2 mount from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CgroupMount {
    pub version: Version,
    /// The directory of the hierarchy that is mounted (`/` unless a subtree is bind-mounted).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// Super options; for cgroup v1 they name the bound controllers (`rw,cpu,cpuacct`).
    pub super_options: Vec<String>,
}

/// A hierarchy the process belongs to, with the directory of its own cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Located {
    pub version: Version,
    pub mount_point: PathBuf,
    pub own_dir: PathBuf,
    /// v1: the controllers bound to the hierarchy. v2: left empty, read later from the directory.
    pub controllers: Vec<String>,
}

/// Parses `/proc/self/cgroup`, skipping malformed lines.
pub(super) fn parse_proc_cgroup(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            let hierarchy_id = fields.next()?.parse().ok()?;
            let controllers = fields
                .next()?
                .split(',')
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect();
            let path = PathBuf::from(fields.next()?);
            Some(Membership {
                hierarchy_id,
                controllers,
                path,
            })
        })
        .collect()
}

/// Parses the cgroup and cgroup2 mounts out of `/proc/self/mountinfo`.
///
/// A line reads `id parent major:minor root mount-point options [optional...] - fstype source
/// super-options`, with spaces and other bytes in paths escaped as `\ooo` octal.
pub(super) fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            let tail: Vec<&str> = after.split(' ').collect();
            let version = match *tail.first()? {
                "cgroup" => Version::V1,
                "cgroup2" => Version::V2,
                _ => return None,
            };
            Some(CgroupMount {
                version,
                root: PathBuf::from(unescape_octal(fields.get(3)?)),
                mount_point: PathBuf::from(unescape_octal(fields.get(4)?)),
                super_options: tail.get(2)?.split(',').map(str::to_owned).collect(),
            })
        })
        .collect()
}

/// Matches each membership to a mount and builds the directory of the process's own cgroup.
pub(super) fn locate(memberships: &[Membership], mounts: &[CgroupMount]) -> Vec<Located> {
    memberships
        .iter()
        .filter_map(|membership| {
            let mount = find_mount(membership, mounts)?;
            Some(Located {
                version: mount.version,
                mount_point: mount.mount_point.clone(),
                own_dir: join_cgroup_path(mount, &membership.path),
                controllers: membership.controllers.clone(),
            })
        })
        .collect()
}

/// Picks the mount of a membership's hierarchy, preferring one whose root contains the path.
fn find_mount<'a>(membership: &Membership, mounts: &'a [CgroupMount]) -> Option<&'a CgroupMount> {
    let candidates: Vec<&CgroupMount> = mounts
        .iter()
        .filter(|mount| {
            if membership.is_unified() {
                mount.version == Version::V2
            } else {
                mount.version == Version::V1
                    && membership
                        .controllers
                        .iter()
                        .all(|controller| mount.super_options.contains(controller))
            }
        })
        .collect();
    candidates
        .iter()
        .find(|mount| membership.path.starts_with(&mount.root))
        .or_else(|| candidates.first())
        .copied()
}

/// Joins a cgroup path to a mount point, removing the mount's root from the path first.
///
/// Without a cgroup namespace, `/proc/self/cgroup` paths start at the hierarchy root, so a mount of
/// the subtree `/docker/abc` must drop that prefix. Inside a cgroup namespace the paths are already
/// relative to the mounted root and are joined as they are.
fn join_cgroup_path(mount: &CgroupMount, path: &Path) -> PathBuf {
    let relative = path.strip_prefix(&mount.root).unwrap_or(path);
    let relative = relative.strip_prefix("/").unwrap_or(relative);
    if relative.as_os_str().is_empty() {
        mount.mount_point.clone()
    } else {
        mount.mount_point.join(relative)
    }
}

/// Decodes mountinfo's `\ooo` octal escapes (`\040` is a space).
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escape = bytes.get(index + 1..index + 4);
        let octal = escape
            .filter(|digits| {
                bytes[index] == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d))
            })
            .and_then(|digits| u8::from_str_radix(std::str::from_utf8(digits).ok()?, 8).ok());
        match octal {
            Some(byte) => {
                decoded.push(byte);
                index += 4;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_CGROUP: &str = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/176b\n\
        2:cpu,cpuacct:/\n0::/\n";
    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn proc_cgroup_lines() {
        let memberships = parse_proc_cgroup(HYBRID_CGROUP);
        assert_eq!(memberships.len(), 5);
        assert_eq!(memberships[3].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(memberships[2].path, PathBuf::from("/process_api/176b"));
        assert!(memberships[4].is_unified());
        assert!(!memberships[0].is_unified());
    }

    #[test]
    fn proc_cgroup_skips_malformed() {
        assert!(parse_proc_cgroup("garbage\nx:memory:/a\n").is_empty());
    }

    #[test]
    fn mountinfo_keeps_cgroup_mounts() {
        let mounts = parse_mountinfo(HYBRID_MOUNTINFO);
        assert_eq!(mounts.len(), 5);
        assert_eq!(
            mounts[0].mount_point,
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(mounts[0].super_options, vec!["rw", "cpu", "cpuacct"]);
        assert_eq!(mounts[4].version, Version::V2);
    }

    #[test]
    fn mountinfo_optional_fields_and_escapes() {
        let line = "30 24 0:26 / /sys/fs/my\\040cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        let mounts = parse_mountinfo(line);
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].mount_point, PathBuf::from("/sys/fs/my cgroup"));
        assert_eq!(mounts[0].super_options, vec!["rw", "nsdelegate"]);
    }

    #[test]
    fn locate_hybrid_layout() {
        let located = locate(
            &parse_proc_cgroup(HYBRID_CGROUP),
            &parse_mountinfo(HYBRID_MOUNTINFO),
        );
        let dirs: Vec<&Path> = located.iter().map(|l| l.own_dir.as_path()).collect();
        assert_eq!(
            dirs,
            vec![
                Path::new("/sys/fs/cgroup/systemd"),
                Path::new("/sys/fs/cgroup/pids"),
                Path::new("/sys/fs/cgroup/memory/process_api/176b"),
                Path::new("/sys/fs/cgroup/cpu,cpuacct"),
                Path::new("/sys/fs/cgroup/unified"),
            ]
        );
        assert_eq!(located[4].version, Version::V2);
    }

    #[test]
    fn locate_pure_v2_service() {
        let memberships = parse_proc_cgroup("0::/system.slice/bulkhead.service\n");
        let mounts = parse_mountinfo(
            "25 21 0:22 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        let located = locate(&memberships, &mounts);
        assert_eq!(located.len(), 1);
        assert_eq!(
            located[0].own_dir,
            PathBuf::from("/sys/fs/cgroup/system.slice/bulkhead.service")
        );
    }

    #[test]
    fn locate_strips_mounted_subtree() {
        let memberships = parse_proc_cgroup("4:memory:/docker/abc/app\n");
        let mounts = parse_mountinfo(
            "35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n",
        );
        let located = locate(&memberships, &mounts);
        assert_eq!(
            located[0].own_dir,
            PathBuf::from("/sys/fs/cgroup/memory/app")
        );
    }

    #[test]
    fn locate_skips_unmounted_hierarchy() {
        let memberships = parse_proc_cgroup("7:blkio:/\n");
        assert!(locate(&memberships, &parse_mountinfo(HYBRID_MOUNTINFO)).is_empty());
    }

    #[test]
    fn unescape_leaves_plain_backslash() {
        assert_eq!(unescape_octal("a\\b\\0401"), "a\\b 1");
    }
}
