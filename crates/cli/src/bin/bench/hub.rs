//! The hub under test: a temp dir with its config, and a bulkheadd process started on it.

use std::fs::{self, File, Permissions};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::client::HubClient;

/// Time allowed for bulkheadd to create its socket and accept a connection.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Time allowed for bulkheadd to stop its spokes and exit after SIGTERM, before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the bench checks for the socket or for the hub's exit.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A running bulkheadd in its own temp dir. Dropping it stops the hub, then removes the dir.
pub struct HubUnderTest {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    // Declared last so that it drops after `drop` has stopped the hub.
    dir: TempDir,
}

impl HubUnderTest {
    /// Creates the temp dir, writes the config and starts `bulkheadd`, then waits until its
    /// socket accepts connections.
    pub async fn start(bulkheadd: &Path) -> Result<HubUnderTest> {
        HubUnderTest::start_with(bulkheadd, "").await
    }

    /// Like [`HubUnderTest::start`], with `extra` appended to the hub config.
    pub async fn start_with(bulkheadd: &Path, extra: &str) -> Result<HubUnderTest> {
        let dir = tempfile::Builder::new()
            .prefix("bulkhead-bench-")
            .tempdir()
            .context("failed to create a temp dir under the system temp folder")?;
        // The spokes' state directories live below this dir and are owned by unprivileged
        // host uids, so those uids need to traverse it.
        fs::set_permissions(dir.path(), Permissions::from_mode(0o755))
            .with_context(|| format!("failed to chmod 0755 {}", dir.path().display()))?;
        fs::create_dir(dir.path().join("apps.d"))
            .context("failed to create the empty apps folder")?;

        let config = dir.path().join("hub.toml");
        fs::write(&config, hub_config(dir.path()) + extra)
            .with_context(|| format!("failed to write {}", config.display()))?;
        let log = dir.path().join("bulkheadd.log");
        let log_file =
            File::create(&log).with_context(|| format!("failed to create {}", log.display()))?;

        let mut command = Command::new(bulkheadd);
        command
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        // SAFETY: the hook runs in the forked child before exec and calls only prctl, which is
        // async-signal-safe and allocates nothing. The hub is spawned from the main thread, which
        // lives until the bench exits, so the signal fires only when the bench itself dies.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("failed to start {}", bulkheadd.display()))?;

        let mut hub = HubUnderTest {
            child,
            socket: dir.path().join("hub.sock"),
            log,
            dir,
        };
        hub.wait_ready().await?;
        Ok(hub)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Returns the bench's temp dir, where the baselines keep their state directories.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Returns the last `lines` lines of the hub's stderr log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .context("failed to check on bulkheadd")?
            {
                bail!(
                    "bulkheadd exited during start-up ({status}); its log ends with:\n{}",
                    self.log_tail(20)
                );
            }
            if self.socket.exists() && HubClient::connect(&self.socket).await.is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "bulkheadd did not accept connections on {} within {READY_TIMEOUT:?}; its log ends with:\n{}",
                    self.socket.display(),
                    self.log_tail(20)
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Sends SIGTERM, so the hub stops its spokes and removes their cgroups, then SIGKILL if it
    /// is still running after `STOP_TIMEOUT`.
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let Ok(pid) = libc::pid_t::try_from(self.child.id()) else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            return;
        };
        // SAFETY: kill has no memory-safety preconditions. `pid` is an unreaped child of this
        // process, so the id cannot have been reused by another process.
        unsafe { libc::kill(pid, libc::SIGTERM) };

        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
                return;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        eprintln!(
            "bench: bulkheadd did not exit within {STOP_TIMEOUT:?} of SIGTERM; sending SIGKILL"
        );
        // Errors here mean the child has already exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HubUnderTest {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Returns the hub config for a bench rooted at `dir`: no idle timeout, so spokes stay warm.
fn hub_config(dir: &Path) -> String {
    format!(
        "[server]\nsocket = {socket:?}\n\n[paths]\napps = {apps:?}\nstate = {state:?}\n\n\
         [spokes]\nidle_timeout = \"0s\"\n",
        socket = dir.join("hub.sock").display().to_string(),
        apps = dir.join("apps.d").display().to_string(),
        state = dir.join("state").display().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_paths_under_dir() {
        let text = hub_config(Path::new("/tmp/bulkhead-bench-x"));
        assert!(
            text.contains("socket = \"/tmp/bulkhead-bench-x/hub.sock\""),
            "{text}"
        );
        assert!(
            text.contains("apps = \"/tmp/bulkhead-bench-x/apps.d\""),
            "{text}"
        );
        assert!(
            text.contains("state = \"/tmp/bulkhead-bench-x/state\""),
            "{text}"
        );
        assert!(text.contains("idle_timeout = \"0s\""), "{text}");
    }
}
