//! Reading and writing cgroup interface files and directories.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::thread;
use std::time::Duration;

use super::CgroupError;

/// How often `rmdir` is retried while the kernel still counts exiting processes in a cgroup.
const REMOVE_ATTEMPTS: u32 = 50;
const REMOVE_RETRY_DELAY: Duration = Duration::from_millis(20);

/// A value to write into an interface file of a new spoke cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LimitWrite {
    pub file: &'static str,
    pub value: String,
    /// Skip the write when the kernel does not provide the file (for example swap accounting
    /// that is compiled out or switched off).
    pub optional: bool,
}

impl LimitWrite {
    pub fn required(file: &'static str, value: impl Into<String>) -> Self {
        LimitWrite {
            file,
            value: value.into(),
            optional: false,
        }
    }

    pub fn optional(file: &'static str, value: impl Into<String>) -> Self {
        LimitWrite {
            file,
            value: value.into(),
            optional: true,
        }
    }
}

pub(super) fn read(path: impl AsRef<Path>) -> Result<String, CgroupError> {
    let path = path.as_ref();
    fs::read_to_string(path).map_err(|source| CgroupError::ReadFile {
        path: path.to_owned(),
        source,
    })
}

/// Writes `value` with one `write` call, as cgroup files expect, and returns the raw io::Error so
/// that callers can react to EBUSY or ESRCH.
pub(super) fn write_raw(path: &Path, value: &str) -> io::Result<()> {
    let mut file = fs::OpenOptions::new().write(true).open(path)?;
    let written = file.write(value.as_bytes())?;
    if written == value.len() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short write to a cgroup file",
        ))
    }
}

pub(super) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    write_raw(path, value).map_err(|source| CgroupError::WriteFile {
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    })
}

/// Creates a directory and returns whether it was new; an existing directory is not an error.
pub(super) fn ensure_dir(path: &Path) -> Result<bool, CgroupError> {
    match fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(CgroupError::CreateDir {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Removes an empty cgroup directory, retrying while the kernel reports it busy. A directory that
/// is already gone counts as removed.
pub(super) fn remove_dir(path: &Path) -> Result<(), CgroupError> {
    let mut attempt = 1;
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error)
                if error.raw_os_error() == Some(libc::EBUSY) && attempt < REMOVE_ATTEMPTS =>
            {
                attempt += 1;
                thread::sleep(REMOVE_RETRY_DELAY);
            }
            Err(source) => {
                return Err(CgroupError::RemoveDir {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
}

/// Returns the pids listed in a `cgroup.procs` file; a missing or unreadable file yields none.
pub(super) fn read_pids(path: &Path) -> Vec<u32> {
    fs::read_to_string(path)
        .map(|text| {
            text.lines()
                .filter_map(|line| line.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Returns the number after `key` in a flat keyed file such as `memory.events`.
pub(super) fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_value_finds_exact_key() {
        let events = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(keyed_value(events, "oom_kill"), Some(2));
        assert_eq!(keyed_value(events, "oom"), Some(3));
        assert_eq!(keyed_value(events, "missing"), None);
    }

    #[test]
    fn keyed_value_reads_v1_oom_control() {
        let control = "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n";
        assert_eq!(keyed_value(control, "oom_kill"), Some(4));
    }

    #[test]
    fn ensure_dir_tolerates_existing() {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path().join("bulkhead");
        assert!(ensure_dir(&dir).expect("create"));
        assert!(!ensure_dir(&dir).expect("exists"));
        remove_dir(&dir).expect("remove");
        remove_dir(&dir).expect("remove twice");
        assert!(!dir.exists());
    }

    #[test]
    fn read_pids_skips_blank_lines() {
        let temp = tempfile::tempdir().expect("temp dir");
        let procs = temp.path().join("cgroup.procs");
        fs::write(&procs, "12\n\n345\n").expect("write");
        assert_eq!(read_pids(&procs), vec![12, 345]);
        assert!(read_pids(&temp.path().join("missing")).is_empty());
    }
}
