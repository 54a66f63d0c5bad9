//! Creates real spoke cgroups, runs processes in them and checks limits, accounting and removal.
//!
//! Creating cgroups needs root; without it each test prints a reason and returns. The tests take a
//! shared lock so that one test's cleanup of an empty `bulkhead` directory cannot race another
//! test's creation in it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use bulkhead_sandbox::cgroup::{
    detect, list_spoke_cgroups, remove_stale, CgroupError, Controller, Limits, SpokeCgroup, Version,
};

static CGROUP_LOCK: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    CGROUP_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Returns whether the test runs as root, printing why it skips otherwise.
fn running_as_root(test: &str) -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        println!("skipped {test}: creating cgroups needs root");
    }
    root
}

fn unique_name(case: &str) -> String {
    format!("test-{}-{case}", std::process::id())
}

/// A spoke cgroup and the child running in it, both cleaned up on drop.
struct Fixture {
    cgroup: Option<SpokeCgroup>,
    child: Option<Child>,
    dirs: Vec<PathBuf>,
}

impl Fixture {
    fn new(case: &str, limits: &Limits) -> Fixture {
        let cgroup = SpokeCgroup::create(&unique_name(case), limits).expect("create spoke cgroup");
        let dirs = cgroup.dirs();
        Fixture {
            cgroup: Some(cgroup),
            child: None,
            dirs,
        }
    }

    fn cgroup(&self) -> &SpokeCgroup {
        self.cgroup.as_ref().expect("cgroup not yet removed")
    }

    /// Starts `sh -c script` held at a `read` until [`Fixture::release`], and moves it into the
    /// cgroup first, so that everything the script does is charged to the cgroup.
    fn start_gated(&mut self, script: &str) -> u32 {
        let gated = format!("read _gate; {script}");
        let child = Command::new("/bin/sh")
            .args(["-c", &gated])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start /bin/sh");
        let pid = child.id();
        self.child = Some(child);
        for procs in self.cgroup().procs_files() {
            fs::write(&procs, pid.to_string())
                .unwrap_or_else(|e| panic!("join {}: {e}", procs.display()));
        }
        pid
    }

    fn release(&mut self) {
        let child = self.child.as_mut().expect("child started");
        let stdin = child.stdin.as_mut().expect("piped stdin");
        stdin.write_all(b"go\n").expect("release the gate");
    }

    /// Waits up to `limit` for the child to exit.
    fn wait_child(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut().expect("child started");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("poll child") {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn child_stderr(&mut self) -> String {
        let child = self.child.as_mut().expect("child started");
        let mut text = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            std::io::Read::read_to_string(&mut stderr, &mut text).expect("read stderr");
        }
        text
    }

    fn remove(&mut self) -> Result<(), CgroupError> {
        self.cgroup.take().expect("cgroup not yet removed").remove()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(cgroup) = self.cgroup.take() {
            if let Err(error) = cgroup.remove() {
                eprintln!("cleanup: {error}");
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Leave no empty `bulkhead` directory behind. One that contains other spokes stays.
        for dir in &self.dirs {
            if let Some(parent) = dir.parent() {
                let _ = fs::remove_dir(parent);
            }
        }
    }
}

fn read_trimmed(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// Returns the spoke directory that carries `controller`.
fn dir_with(cgroup: &SpokeCgroup, controller: Controller) -> PathBuf {
    let marker = match (cgroup.version_of(controller), controller) {
        (Some(Version::V2), _) => "cgroup.controllers",
        (Some(Version::V1), Controller::Memory) => "memory.limit_in_bytes",
        (Some(Version::V1), Controller::Pids) => "pids.max",
        (Some(Version::V1), Controller::Cpu) => "cpu.cfs_quota_us",
        (None, _) => panic!("no directory carries {}", controller.name()),
    };
    cgroup
        .dirs()
        .into_iter()
        .find(|dir| dir.join(marker).exists())
        .expect("directory with the controller")
}

#[test]
fn detect_finds_own_cgroups() {
    let hierarchy = detect().expect("detect cgroup hierarchies");
    let mounts: Vec<_> = hierarchy
        .unified
        .iter()
        .chain(hierarchy.legacy.iter())
        .collect();
    assert!(
        !mounts.is_empty(),
        "no cgroup hierarchy found: {hierarchy:?}"
    );
    for mount in mounts {
        assert!(mount.own_dir.starts_with(&mount.mount_point), "{mount:?}");
        assert!(
            mount.own_dir.is_dir(),
            "{} is not a directory",
            mount.own_dir.display()
        );
    }
}

#[test]
fn invalid_name_rejected_before_any_change() {
    let error = SpokeCgroup::create("../escape", &Limits::default()).expect_err("invalid name");
    assert!(matches!(error, CgroupError::InvalidName { .. }), "{error}");
}

#[test]
fn limits_written_and_process_tracked() {
    if !running_as_root("limits_written_and_process_tracked") {
        return;
    }
    let _guard = lock();
    let limits = Limits {
        memory_bytes: Some(64 << 20),
        pids: Some(32),
        cpu_millis: Some(500),
    };
    let mut fixture = Fixture::new("limits", &limits);
    let cgroup = fixture.cgroup();

    let memory = dir_with(cgroup, Controller::Memory);
    let pids = dir_with(cgroup, Controller::Pids);
    let cpu = dir_with(cgroup, Controller::Cpu);
    for dir in [&memory, &pids, &cpu] {
        assert!(
            dir.ends_with(format!("bulkhead/{}", unique_name("limits"))),
            "{}",
            dir.display()
        );
    }
    assert_eq!(read_trimmed(&pids.join("pids.max")), "32");
    if cgroup.version_of(Controller::Memory) == Some(Version::V1) {
        assert_eq!(
            read_trimmed(&memory.join("memory.limit_in_bytes")),
            "67108864"
        );
        let memsw = memory.join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            assert_eq!(read_trimmed(&memsw), "67108864");
        }
    } else {
        assert_eq!(read_trimmed(&memory.join("memory.max")), "67108864");
    }
    if cgroup.version_of(Controller::Cpu) == Some(Version::V1) {
        assert_eq!(read_trimmed(&cpu.join("cpu.cfs_period_us")), "100000");
        assert_eq!(read_trimmed(&cpu.join("cpu.cfs_quota_us")), "50000");
    } else {
        assert_eq!(read_trimmed(&cpu.join("cpu.max")), "50000 100000");
    }

    let pid = fixture.start_gated("exec sleep 30");
    fixture.release();
    assert!(
        fixture.cgroup().pids().contains(&pid),
        "pids {:?} lack {pid}",
        fixture.cgroup().pids()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while fixture.cgroup().memory_current().unwrap_or(0) == 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        fixture.cgroup().memory_current().unwrap_or(0) > 0,
        "no memory charged to the cgroup"
    );
    assert!(
        list_spoke_cgroups().contains(&memory),
        "{} not listed",
        memory.display()
    );

    let dirs = fixture.cgroup().dirs();
    fixture.remove().expect("remove spoke cgroup");
    let status = fixture
        .wait_child(Duration::from_secs(5))
        .expect("child gone after remove");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    for dir in dirs {
        assert!(!dir.exists(), "{} still exists", dir.display());
    }
}

#[test]
fn memory_limit_oom_kills() {
    if !running_as_root("memory_limit_oom_kills") {
        return;
    }
    let _guard = lock();
    let limits = Limits {
        memory_bytes: Some(32 << 20),
        ..Limits::default()
    };
    let mut fixture = Fixture::new("oom", &limits);
    assert_eq!(fixture.cgroup().oom_kills().expect("read OOM kills"), 0);

    // tail keeps a line without newline in memory, so 200 MiB of zero bytes must all fit.
    fixture.start_gated("head -c 200M /dev/zero | tail");
    fixture.release();
    let status = fixture
        .wait_child(Duration::from_secs(60))
        .expect("pipeline ends within 60 s");
    assert!(
        !status.success(),
        "the pipeline fit into 32 MiB: {status:?}"
    );
    let kills = fixture.cgroup().oom_kills().expect("read OOM kills");
    assert!(kills >= 1, "oom_kill is {kills}");
}

#[test]
fn pids_limit_stops_forks() {
    if !running_as_root("pids_limit_stops_forks") {
        return;
    }
    let _guard = lock();
    let limits = Limits {
        pids: Some(5),
        ..Limits::default()
    };
    let mut fixture = Fixture::new("pids", &limits);

    fixture.start_gated("i=0; while [ $i -lt 20 ]; do sleep 5 & i=$((i+1)); done; wait");
    fixture.release();
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut max_seen = 0;
    while Instant::now() < deadline {
        max_seen = max_seen.max(fixture.cgroup().pids().len());
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        max_seen <= 5,
        "{max_seen} processes in a cgroup limited to 5"
    );
    assert!(
        max_seen >= 2,
        "the shell never forked: {max_seen} processes seen"
    );
    fixture.remove().expect("remove spoke cgroup");
    let _ = fixture.wait_child(Duration::from_secs(5));
    let stderr = fixture.child_stderr();
    assert!(
        stderr.to_lowercase().contains("fork"),
        "no fork failure reported: {stderr:?}"
    );
}

#[test]
fn cpu_limit_throttles() {
    if !running_as_root("cpu_limit_throttles") {
        return;
    }
    let _guard = lock();
    let limits = Limits {
        cpu_millis: Some(100),
        ..Limits::default()
    };
    let mut fixture = Fixture::new("cpu", &limits);
    let cpu_stat = dir_with(fixture.cgroup(), Controller::Cpu).join("cpu.stat");

    fixture.start_gated("while :; do :; done");
    fixture.release();
    thread::sleep(Duration::from_millis(800));
    let stat = read_trimmed(&cpu_stat);
    let throttled = stat
        .lines()
        .find_map(|line| line.strip_prefix("nr_throttled "))
        .and_then(|value| value.parse::<u64>().ok())
        .expect("nr_throttled in cpu.stat");
    assert!(throttled > 0, "busy loop never throttled: {stat}");
    fixture.remove().expect("remove spoke cgroup");
}

#[test]
fn stale_cgroup_removed() {
    if !running_as_root("stale_cgroup_removed") {
        return;
    }
    let _guard = lock();
    let mut fixture = Fixture::new(
        "stale",
        &Limits {
            pids: Some(16),
            ..Limits::default()
        },
    );
    fixture.start_gated("exec sleep 30");
    fixture.release();

    // A restarted hub has only the directory paths to go on.
    let stale: Vec<PathBuf> = list_spoke_cgroups()
        .into_iter()
        .filter(|dir| dir.ends_with(unique_name("stale")))
        .collect();
    assert_eq!(
        stale.len(),
        fixture.dirs.len(),
        "listed {stale:?}, created {:?}",
        fixture.dirs
    );
    for dir in &stale {
        remove_stale(dir).expect("remove stale spoke cgroup");
        assert!(!dir.exists(), "{} still exists", dir.display());
    }
    assert!(
        fixture.wait_child(Duration::from_secs(5)).is_some(),
        "child survived"
    );
    // Everything is gone already; keep the fixture from removing it a second time.
    fixture.cgroup.take();
}

#[test]
fn remove_stale_rejects_other_dirs() {
    let error =
        remove_stale(Path::new("/sys/fs/cgroup/memory/system.slice")).expect_err("not a spoke");
    assert!(
        matches!(error, CgroupError::NotSpokeCgroup { .. }),
        "{error}"
    );
}
