//! Helpers for the launcher tests: a fixture of host directories, a launch spec, and a runner that
//! starts the launcher as a subprocess with the hub's stdio and channel layout.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bulkhead_sandbox::launch::{LaunchSpec, CHANNEL_FD};
use bulkhead_sandbox::mounts::{Bind, MountPlan};

/// Argument that makes the test binary act as the launcher (see `main`).
pub const LAUNCHER_MODE: &str = "__launcher";
/// Argument that makes the test binary act as the runtime inside the sandbox.
pub const INSIDE_MODE: &str = "__inside";
/// Argument that makes the test binary close descriptors and report which are left.
pub const CLOSE_FDS_MODE: &str = "__close-fds";

/// Host uid and gid that uid and gid 0 inside the test sandboxes map to.
pub const HOST_ID: u32 = 2_000_000_000;

/// How long any single wait in these tests may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Host paths every test sandbox binds, as the hub's default configuration does.
pub const SYSTEM_PATHS: [&str; 7] = [
    "/usr",
    "/lib",
    "/lib64",
    "/bin",
    "/sbin",
    "/etc/ld.so.cache",
    "/etc/alternatives",
];

/// Host directories for one test: a read-only data directory and a state directory owned by
/// [`HOST_ID`]. Removed on drop.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub state: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("bulkhead-launch-test-")
            .tempdir()
            .expect("create temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("create data dir");
        std::fs::write(data.join("hello"), "hello from the host\n").expect("write data file");
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755))
            .expect("chmod data dir");
        let state = dir.path().join("state");
        std::fs::create_dir(&state).expect("create state dir");
        std::os::unix::fs::chown(&state, Some(HOST_ID), Some(HOST_ID)).expect("chown state dir");
        Fixture { dir, data, state }
    }

    /// Returns a spec that runs `script` with /bin/sh in a sandbox with the system paths, the data
    /// directory at /data and the state directory at /state. The script's stdout goes to the
    /// channel. After it, the shell prints "ready" and waits for one line on the channel.
    pub fn spec(&self, script: &str) -> LaunchSpec {
        let system: Vec<PathBuf> = SYSTEM_PATHS.iter().map(PathBuf::from).collect();
        let mut mounts = MountPlan::with_system_paths(&system).expect("system mount plan");
        mounts
            .add_bind(Bind {
                source: self.data.clone(),
                target: PathBuf::from("/data"),
                writable: false,
                optional: false,
            })
            .expect("data bind");
        mounts.state_dir = Some(self.state.clone());
        let wrapped = format!("exec >&3\n{script}\necho ready\nread go <&3\n");
        LaunchSpec {
            app: "launch-test".to_string(),
            host_uid: HOST_ID,
            host_gid: HOST_ID,
            mounts,
            cgroup_procs: Vec::new(),
            runtime_args: vec!["sh".to_string(), "-c".to_string(), wrapped],
            runtime_env: vec![("PATH".to_string(), "/usr/bin:/bin".to_string())],
            egress_channel: false,
        }
    }
}

/// Returns the resolved path of /bin/sh, which the launcher opens without following symlinks.
pub fn shell_path() -> PathBuf {
    std::fs::canonicalize("/bin/sh").expect("resolve /bin/sh")
}

/// A launcher subprocess and the test's end of its channel.
pub struct Started {
    launcher: Child,
    channel: BufReader<UnixStream>,
    /// The launcher's first stdout line.
    pub line: String,
    stdout_rest: mpsc::Receiver<String>,
}

/// How the launcher subprocess is started.
pub struct StartOptions {
    /// Arguments after the test binary, by default [`LAUNCHER_MODE`] and the shell.
    pub args: Vec<String>,
    /// Whether fd 3 of the launcher is the channel.
    pub with_channel: bool,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            args: vec![
                LAUNCHER_MODE.to_string(),
                shell_path().display().to_string(),
            ],
            with_channel: true,
        }
    }
}

/// Starts the launcher for `spec` and waits for its first stdout line.
pub fn start(spec: &LaunchSpec) -> Started {
    start_with(spec, StartOptions::default())
}

pub fn start_with(spec: &LaunchSpec, options: StartOptions) -> Started {
    let (ours, theirs) = UnixStream::pair().expect("create channel socketpair");
    let theirs_fd = theirs.as_raw_fd();
    let with_channel = options.with_channel;
    let mut command = Command::new(std::env::current_exe().expect("test binary path"));
    command
        .args(&options.args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // SAFETY: the closure only calls dup2, which is async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            if with_channel && libc::dup2(theirs_fd, CHANNEL_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut launcher = command.spawn().expect("spawn launcher");
    drop(theirs);

    let mut stdin = launcher.stdin.take().expect("launcher stdin");
    stdin
        .write_all(
            serde_json::to_string(spec)
                .expect("serialize spec")
                .as_bytes(),
        )
        .expect("write spec");
    drop(stdin);

    let stdout = launcher.stdout.take().expect("launcher stdout");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = sender.send(line);
        let mut rest = String::new();
        let _ = reader.read_to_string(&mut rest);
        let _ = sender.send(rest);
    });
    let line = receiver
        .recv_timeout(TIMEOUT)
        .expect("launcher wrote no stdout line in time");

    ours.set_read_timeout(Some(TIMEOUT))
        .expect("set channel timeout");
    Started {
        launcher,
        channel: BufReader::new(ours),
        line,
        stdout_rest: receiver,
    }
}

/// The launcher's results after it exited.
pub struct Finished {
    pub exit_code: i32,
    /// What the runtime wrote to the channel after "ready" (normally nothing).
    pub late_output: String,
    /// What the launcher wrote to stdout after its first line (must be nothing).
    pub stdout_rest: String,
}

impl Started {
    /// Returns the runtime's host pid from a `{"pid":N}` line.
    pub fn runtime_pid(&self) -> i32 {
        let value: serde_json::Value = serde_json::from_str(self.line.trim())
            .unwrap_or_else(|err| panic!("launcher line {:?} is not JSON: {err}", self.line));
        let pid = value["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("launcher line {:?} has no pid", self.line));
        i32::try_from(pid).expect("pid fits i32")
    }

    /// Returns the message of an `{"error":"..."}` line.
    pub fn error_message(&self) -> String {
        let value: serde_json::Value = serde_json::from_str(self.line.trim())
            .unwrap_or_else(|err| panic!("launcher line {:?} is not JSON: {err}", self.line));
        value["error"]
            .as_str()
            .unwrap_or_else(|| panic!("launcher line {:?} has no error", self.line))
            .to_string()
    }

    /// Reads channel lines up to the "ready" line and returns them.
    pub fn output_until_ready(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let read = self.channel.read_line(&mut line).expect("read channel");
            assert!(
                read > 0,
                "channel closed before \"ready\"; output so far: {lines:#?}"
            );
            let line = line.trim_end_matches('\n').to_string();
            if line == "ready" {
                return lines;
            }
            lines.push(line);
        }
    }

    /// Sends the line that ends the script's final wait.
    pub fn release(&mut self) {
        let _ = self.channel.get_mut().write_all(b"go\n");
    }

    pub fn launcher_pid(&self) -> i32 {
        i32::try_from(self.launcher.id()).expect("pid fits i32")
    }

    /// Releases the script and waits for the launcher to exit.
    pub fn finish(mut self) -> Finished {
        self.release();
        let exit_code = self.wait_launcher();
        let mut late_output = String::new();
        let _ = self.channel.read_to_string(&mut late_output);
        let stdout_rest = self.stdout_rest.recv_timeout(TIMEOUT).unwrap_or_default();
        Finished {
            exit_code,
            late_output,
            stdout_rest,
        }
    }

    /// Waits for the launcher without releasing the script.
    pub fn wait_launcher(&mut self) -> i32 {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.launcher.try_wait().expect("wait for launcher") {
                use std::os::unix::process::ExitStatusExt;
                return status
                    .code()
                    .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
            }
            assert!(
                Instant::now() < deadline,
                "launcher did not exit within {TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        // Killing the launcher kills the runtime through its parent-death signal.
        if let Ok(None) = self.launcher.try_wait() {
            let _ = self.launcher.kill();
            let _ = self.launcher.wait();
        }
    }
}

/// Reads `/proc/<pid>/status` as name and value pairs.
pub fn proc_status(pid: i32) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_string(), value.trim().to_string()))
        .collect()
}

pub fn status_field(status: &[(String, String)], name: &str) -> String {
    status
        .iter()
        .find(|(field, _)| field == name)
        .map(|(_, value)| value.clone())
        .unwrap_or_else(|| panic!("status has no {name} field"))
}

/// Returns whether `pid` is gone or a zombie, waiting up to [`TIMEOUT`].
pub fn wait_process_gone(pid: i32) -> bool {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat) => {
                let state = stat.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
                if state == Some("Z") || state == Some("X") {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A writable cgroup below this process's own cgroup, removed on drop.
pub struct TestCgroup {
    pub dir: PathBuf,
}

impl TestCgroup {
    /// Creates a cgroup under the memory or pids v1 hierarchy, or under cgroup2 at /sys/fs/cgroup.
    pub fn create() -> Result<TestCgroup, String> {
        let own = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
        let name = format!("bulkhead-launch-test-{}", std::process::id());
        for controller in ["memory", "pids"] {
            let line = own.lines().find_map(|line| {
                let mut fields = line.splitn(3, ':');
                let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
                controllers
                    .split(',')
                    .any(|c| c == controller)
                    .then(|| path.to_string())
            });
            let Some(path) = line else { continue };
            let base = Path::new("/sys/fs/cgroup").join(controller);
            let dir = base.join(path.trim_start_matches('/')).join(&name);
            if base.join("cgroup.procs").exists() && std::fs::create_dir(&dir).is_ok() {
                return Ok(TestCgroup { dir });
            }
        }
        if let Some(path) = own.lines().find_map(|line| line.strip_prefix("0::")) {
            let base = Path::new("/sys/fs/cgroup");
            let dir = base.join(path.trim_start_matches('/')).join(&name);
            if base.join("cgroup.controllers").exists() && std::fs::create_dir(&dir).is_ok() {
                return Ok(TestCgroup { dir });
            }
        }
        Err(format!(
            "no writable cgroup hierarchy found; /proc/self/cgroup:\n{own}"
        ))
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let deadline = Instant::now() + TIMEOUT;
        while std::fs::remove_dir(&self.dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
