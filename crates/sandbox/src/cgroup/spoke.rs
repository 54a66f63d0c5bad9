//! The cgroups of one spoke: creation, accounting, killing and removal.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use super::files::{self, LimitWrite};
use super::{
    detect, plan, v1, v2, validate_name, CgroupError, Controller, Limits, PlannedDir, Version,
    SPOKES_DIR,
};

/// Rounds of SIGKILL to every listed pid before [`SpokeCgroup::kill_all`] gives up.
const KILL_ROUNDS: u32 = 100;
const KILL_ROUND_DELAY: Duration = Duration::from_millis(20);

/// How often creating `bulkhead/<name>` is retried when a concurrent cleanup removed `bulkhead`.
const CREATE_ATTEMPTS: u32 = 3;

/// One directory of a spoke cgroup and the controllers it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SpokeDir {
    version: Version,
    path: PathBuf,
    controllers: Vec<Controller>,
}

/// The cgroup directories of one spoke, one per hierarchy that hosts its controllers.
///
/// Dropping the value leaves the directories in place. Call [`SpokeCgroup::remove`], or find
/// leftovers after a restart with [`list_spoke_cgroups`] and remove them with [`remove_stale`].
/// Every method does blocking file I/O, and `kill_all` and `remove` may sleep for a few seconds,
/// so async callers run them on a blocking thread (`tokio::task::spawn_blocking`).
#[derive(Debug)]
pub struct SpokeCgroup {
    name: String,
    dirs: Vec<SpokeDir>,
}

impl SpokeCgroup {
    /// Creates the spoke's cgroup `<hub's own cgroup>/bulkhead/<name>` on every hierarchy it needs and
    /// writes the limits. `name` is e.g. "notes-3f2a91c0". Fails (never degrades) when a limit is set
    /// but its controller is unavailable: the error names the controller and the hierarchy looked at.
    ///
    /// On cgroup v2 this enables the controllers in the hub's cgroup and in `bulkhead`, and may move
    /// the hub's processes into the leaf `<hub's cgroup>/hub` when the kernel requires it.
    /// A failure part-way removes the directories created so far.
    pub fn create(name: &str, limits: &Limits) -> Result<SpokeCgroup, CgroupError> {
        validate_name(name)?;
        limits.validate()?;
        let hierarchy = detect()?;
        let planned = plan(&hierarchy, limits, name)?;
        SpokeCgroup::create_planned(name, &planned, limits)
    }

    fn create_planned(
        name: &str,
        planned: &[PlannedDir],
        limits: &Limits,
    ) -> Result<SpokeCgroup, CgroupError> {
        let mut cgroup = SpokeCgroup {
            name: name.to_owned(),
            dirs: Vec::new(),
        };
        for dir in planned {
            if let Err(error) = cgroup.add_dir(dir, limits) {
                cgroup.remove_empty_dirs();
                return Err(error);
            }
        }
        tracing::info!(spoke = name, dirs = ?cgroup.dirs(), "created spoke cgroup");
        Ok(cgroup)
    }

    fn add_dir(&mut self, planned: &PlannedDir, limits: &Limits) -> Result<(), CgroupError> {
        let path = create_spoke_dir(planned, &self.name)?;
        self.dirs.push(SpokeDir {
            version: planned.version,
            path: path.clone(),
            controllers: planned.controllers.clone(),
        });
        let writes = match planned.version {
            Version::V1 => v1::limit_writes(&planned.controllers, limits),
            Version::V2 => v2::limit_writes(&planned.controllers, limits),
        };
        write_limits(&path, &writes)
    }

    /// Best-effort removal of directories that no process has joined yet.
    fn remove_empty_dirs(&self) {
        for dir in &self.dirs {
            if let Err(error) = fs::remove_dir(&dir.path) {
                tracing::warn!(path = %dir.path.display(), %error, "removing a half-created spoke cgroup failed");
            }
        }
    }

    /// Returns the spoke name the cgroup was created with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the spoke's cgroup directories, one per hierarchy.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|dir| dir.path.clone()).collect()
    }

    /// Returns the cgroup version that carries `controller` for this spoke, if any.
    pub fn version_of(&self, controller: Controller) -> Option<Version> {
        self.dir_with(controller).map(|dir| dir.version)
    }

    /// Returns the `cgroup.procs` files to join: a process writes its pid to each of them.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|dir| dir.path.join("cgroup.procs"))
            .collect()
    }

    /// Returns how many processes the kernel OOM-killed in the spoke's memory cgroup, from
    /// `memory.events` (v2) or `memory.oom_control` (v1). Without a memory controller it is 0.
    pub fn oom_kills(&self) -> Result<u64, CgroupError> {
        let Some(dir) = self.dir_with(Controller::Memory) else {
            return Ok(0);
        };
        let file = match dir.version {
            Version::V1 => v1::OOM_CONTROL_FILE,
            Version::V2 => v2::MEMORY_EVENTS_FILE,
        };
        let path = dir.path.join(file);
        let text = files::read(&path)?;
        files::keyed_value(&text, "oom_kill").ok_or(CgroupError::MissingField {
            path,
            key: "oom_kill",
            content: text,
        })
    }

    /// Returns the memory in use by the spoke in bytes, or None without a readable memory cgroup.
    pub fn memory_current(&self) -> Option<u64> {
        let dir = self.dir_with(Controller::Memory)?;
        let file = match dir.version {
            Version::V1 => v1::MEMORY_USAGE_FILE,
            Version::V2 => v2::MEMORY_CURRENT_FILE,
        };
        fs::read_to_string(dir.path.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Returns every pid in the spoke's cgroups, sorted and without duplicates.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .procs_files()
            .iter()
            .flat_map(|path| files::read_pids(path))
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Kills every process in the spoke's cgroups and waits until they are gone.
    ///
    /// cgroup v2 directories are killed through `cgroup.kill` when the kernel has it. Then every
    /// listed pid gets SIGKILL, round after round, until the cgroups are empty or
    /// 100 rounds 20 ms apart have passed.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        for dir in self.dirs.iter().filter(|dir| dir.version == Version::V2) {
            v2::kill_via_file(&dir.path)?;
        }
        for _ in 0..KILL_ROUNDS {
            let pids = self.pids();
            if pids.is_empty() {
                return Ok(());
            }
            for pid in pids {
                send_sigkill(pid);
            }
            thread::sleep(KILL_ROUND_DELAY);
        }
        let remaining = self.pids();
        if remaining.is_empty() {
            return Ok(());
        }
        Err(CgroupError::KillTimedOut {
            name: self.name.clone(),
            remaining,
            rounds: KILL_ROUNDS,
        })
    }

    /// Kills every process, then removes each of the spoke's directories, retrying briefly while
    /// the kernel reports one busy. The shared `bulkhead` directory stays.
    pub fn remove(self) -> Result<(), CgroupError> {
        self.kill_all()?;
        for dir in &self.dirs {
            files::remove_dir(&dir.path)?;
        }
        tracing::info!(spoke = %self.name, "removed spoke cgroup");
        Ok(())
    }

    fn dir_with(&self, controller: Controller) -> Option<&SpokeDir> {
        self.dirs
            .iter()
            .find(|dir| dir.controllers.contains(&controller))
    }
}

/// Creates `base/bulkhead/<name>`, which must not exist yet.
fn create_spoke_dir(planned: &PlannedDir, name: &str) -> Result<PathBuf, CgroupError> {
    let mut attempt = 1;
    loop {
        let parent = match planned.version {
            Version::V1 => v1::prepare_parent(&planned.base)?,
            Version::V2 => v2::prepare_parent(&planned.base, &planned.controllers)?,
        };
        let path = parent.join(name);
        match fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            // Another process removed an empty `bulkhead` between the two mkdir calls.
            Err(error)
                if error.kind() == std::io::ErrorKind::NotFound && attempt < CREATE_ATTEMPTS =>
            {
                attempt += 1;
            }
            Err(source) => return Err(CgroupError::CreateDir { path, source }),
        }
    }
}

fn write_limits(dir: &Path, writes: &[LimitWrite]) -> Result<(), CgroupError> {
    for write in writes {
        let path = dir.join(write.file);
        if write.optional && !path.exists() {
            tracing::debug!(path = %path.display(), "optional cgroup file missing; skipped");
            continue;
        }
        files::write(&path, &write.value)?;
    }
    Ok(())
}

fn send_sigkill(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill takes plain integers. The pid was read from the spoke's cgroup.procs. A pid that
    // exited and was reused in between can be hit; the rounds stop as soon as the cgroup is empty.
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    if rc != 0 {
        tracing::debug!(pid, error = %std::io::Error::last_os_error(), "SIGKILL to a spoke process failed");
    }
}

/// Lists leftover spoke cgroups (`bulkhead/*` under the hub's cgroup on every hierarchy), so that a
/// restarted hub can remove them with [`remove_stale`]. Returns none when discovery fails.
pub fn list_spoke_cgroups() -> Vec<PathBuf> {
    let hierarchy = match detect() {
        Ok(hierarchy) => hierarchy,
        Err(error) => {
            tracing::warn!(%error, "cgroup discovery failed; no stale spoke cgroups listed");
            return Vec::new();
        }
    };
    let mut found: Vec<PathBuf> = hierarchy
        .unified
        .iter()
        .chain(hierarchy.legacy.iter())
        .filter_map(|mount| fs::read_dir(mount.own_dir.join(SPOKES_DIR)).ok())
        .flat_map(|entries| entries.filter_map(Result::ok))
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .map(|entry| entry.path())
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Kills the processes of one leftover spoke cgroup directory and removes it. The directory's
/// parent must be named `bulkhead`, so that no other cgroup can be removed by mistake.
pub fn remove_stale(dir: &Path) -> Result<(), CgroupError> {
    let parent_is_spokes = dir
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|name| name == SPOKES_DIR);
    let name = dir.file_name().and_then(|name| name.to_str());
    let (true, Some(name)) = (parent_is_spokes, name) else {
        return Err(CgroupError::NotSpokeCgroup {
            path: dir.to_owned(),
        });
    };
    let version = if dir.join("cgroup.controllers").exists() {
        Version::V2
    } else {
        Version::V1
    };
    let cgroup = SpokeCgroup {
        name: name.to_owned(),
        dirs: vec![SpokeDir {
            version,
            path: dir.to_owned(),
            controllers: Vec::new(),
        }],
    };
    cgroup.remove()
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Command;

    use super::*;

    /// Runs the cgroup v2 directory, `cgroup.kill` and removal path on the unified hierarchy. Hosts
    /// whose memory, pids and cpu controllers sit on cgroup v1 never reach it through `create`.
    #[test]
    fn v2_dir_killed_and_removed() {
        // SAFETY: geteuid has no arguments and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            println!("skipped v2_dir_killed_and_removed: creating cgroups needs root");
            return;
        }
        let Some(unified) = detect().expect("detect cgroup hierarchies").unified else {
            println!("skipped v2_dir_killed_and_removed: no cgroup2 mount");
            return;
        };
        let planned = [PlannedDir {
            version: Version::V2,
            base: unified.own_dir.clone(),
            controllers: Vec::new(),
        }];
        let name = format!("unit-{}", std::process::id());
        let cgroup =
            SpokeCgroup::create_planned(&name, &planned, &Limits::default()).expect("create");
        let mut child = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("start sleep");
        for procs in cgroup.procs_files() {
            fs::write(&procs, child.id().to_string()).expect("join the cgroup");
        }
        assert_eq!(cgroup.pids(), vec![child.id()]);
        assert_eq!(cgroup.oom_kills().expect("no memory controller"), 0);

        let dir = cgroup.dirs()[0].clone();
        cgroup.remove().expect("remove");
        let status = child.wait().expect("wait for sleep");
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(!dir.exists(), "{} still exists", dir.display());
        let _ = fs::remove_dir(unified.own_dir.join(SPOKES_DIR));
    }
}
