//! One app's spoke slot: the state machine of starting, ready, crashed, backoff and stopped.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bulkhead_proto::v1::{ShutdownRequest, StartResponse};
use bulkhead_sandbox::cgroup::SpokeCgroup;
use serde_json::Value;
use tokio::sync::{watch, Mutex};

use super::channel::SpokeClient;
use super::exit::SpokeExit;
use super::launch::{self, Launched};
use crate::audit::{fields, AuditLog};
use crate::catalog::{Catalogs, Trigger};
use crate::config::Config;
use crate::error::HubError;
use crate::registry::AppEntry;
use crate::sampling::Sampler;

/// How long a spoke must stay up before its crash counter resets.
const STABLE_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpokeState {
    Stopped,
    Starting,
    Ready,
    Stopping,
    Crashed,
    Backoff,
}

impl SpokeState {
    pub fn as_str(self) -> &'static str {
        match self {
            SpokeState::Stopped => "stopped",
            SpokeState::Starting => "starting",
            SpokeState::Ready => "ready",
            SpokeState::Stopping => "stopping",
            SpokeState::Crashed => "crashed",
            SpokeState::Backoff => "backoff",
        }
    }
}

/// A snapshot of one spoke for ListSpokes.
#[derive(Debug, Clone)]
pub struct SpokeInfo {
    pub app: String,
    pub pid: u32,
    pub app_pid: u32,
    pub state: SpokeState,
    pub started_at_ms: u64,
    pub restarts: u32,
    pub last_exit: String,
    pub memory_bytes: u64,
    pub calls: u64,
    pub egress: crate::egress::EgressSnapshot,
}

/// A started spoke, shared by the calls that use it.
pub struct RunningSpoke {
    pub client: SpokeClient,
    pub catalog: StartResponse,
    pub runtime_pid: u32,
    pub app_pid: u32,
    launcher_pid: Option<u32>,
    started_at: SystemTime,
    started_instant: Instant,
    cgroup: std::sync::Mutex<Option<SpokeCgroup>>,
    calls: AtomicU64,
    in_flight: AtomicU32,
    last_used: std::sync::Mutex<Instant>,
    pub(super) stopping: AtomicBool,
    exit: watch::Receiver<Option<SpokeExit>>,
    egress: Option<Arc<crate::egress::EgressStats>>,
}

/// Counts a call as in flight until dropped, so the idle sweeper leaves the spoke alone.
pub struct CallGuard<'a>(&'a RunningSpoke);

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        if let Ok(mut last_used) = self.0.last_used.lock() {
            *last_used = Instant::now();
        }
    }
}

impl RunningSpoke {
    pub fn begin_call(&self) -> CallGuard<'_> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.calls.fetch_add(1, Ordering::Relaxed);
        CallGuard(self)
    }

    fn has_exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    /// Waits up to `timeout` for the spoke's exit and returns it, if it came.
    pub async fn wait_exit(&self, timeout: Duration) -> Option<SpokeExit> {
        let mut exit = self.exit.clone();
        let result = tokio::time::timeout(timeout, exit.wait_for(Option::is_some)).await;
        result.ok().and_then(|exit| exit.ok()).and_then(|exit| exit.clone())
    }

    fn memory_bytes(&self) -> u64 {
        let cgroup = self.cgroup.lock().ok();
        cgroup.and_then(|cgroup| cgroup.as_ref().and_then(SpokeCgroup::memory_current)).unwrap_or(0)
    }

    /// Kills every process of the spoke: the launcher first, whose death takes the PID namespace
    /// with it, then anything left in the cgroup.
    fn kill(&self) {
        if let Some(pid) = self.launcher_pid.and_then(|pid| i32::try_from(pid).ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        if let Ok(cgroup) = self.cgroup.lock() {
            if let Some(cgroup) = cgroup.as_ref() {
                let _ = cgroup.kill_all();
            }
        }
    }
}

struct Inner {
    state: SpokeState,
    running: Option<Arc<RunningSpoke>>,
    consecutive_crashes: u32,
    restarts: u32,
    next_start: Option<tokio::time::Instant>,
    last_exit: Option<SpokeExit>,
}

/// The restart delay after a crash: `base`, doubled per consecutive crash, at most `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    fn delay(self, consecutive_crashes: u32) -> Duration {
        let exponent = consecutive_crashes.saturating_sub(1).min(16);
        self.base.saturating_mul(1 << exponent).min(self.max)
    }
}

pub struct Slot {
    app: String,
    audit: Arc<AuditLog>,
    catalogs: Arc<Catalogs>,
    sampler: Arc<Sampler>,
    backoff: Backoff,
    inner: Mutex<Inner>,
}

impl Slot {
    pub fn new(app: &str, backoff: Backoff, audit: Arc<AuditLog>, catalogs: Arc<Catalogs>, sampler: Arc<Sampler>) -> Slot {
        Slot {
            app: app.to_string(),
            audit,
            catalogs,
            sampler,
            backoff,
            inner: Mutex::new(Inner {
                state: SpokeState::Stopped,
                running: None,
                consecutive_crashes: 0,
                restarts: 0,
                next_start: None,
                last_exit: None,
            }),
        }
    }

    pub fn app(&self) -> &str {
        &self.app
    }

    /// Returns the running spoke, starting one if none runs. Concurrent callers wait for one start.
    pub async fn ensure_started(self: &Arc<Self>, config: &Config, entry: &AppEntry) -> Result<Arc<RunningSpoke>, HubError> {
        let mut inner = self.inner.lock().await;
        if let Some(running) = &inner.running {
            if !running.has_exited() && !running.stopping.load(Ordering::Acquire) {
                return Ok(running.clone());
            }
        }
        if let Some(next_start) = inner.next_start {
            if tokio::time::Instant::now() < next_start {
                inner.state = SpokeState::Backoff;
                tokio::time::sleep_until(next_start).await;
            }
        }
        let after_crash = inner.last_exit.as_ref().is_some_and(|exit| *exit != SpokeExit::Stopped);
        inner.state = SpokeState::Starting;
        let begun = Instant::now();
        let launched = match launch::launch(config, entry, &self.audit).await {
            Ok(launched) => launched,
            Err(error) => {
                inner.state = SpokeState::Crashed;
                self.schedule_restart(&mut inner);
                tracing::warn!(app = %self.app, "spoke failed to start: {error}");
                return Err(HubError::SpokeStart { app: self.app.clone(), reason: error.to_string() });
            }
        };
        if after_crash {
            inner.restarts += 1;
        }
        let running = self.watch(launched, entry.manifest.limits.memory_bytes);
        tracing::info!(
            app = %self.app,
            pid = running.runtime_pid,
            app_pid = running.app_pid,
            tools = running.catalog.tools.len(),
            elapsed_ms = u64::try_from(begun.elapsed().as_millis()).unwrap_or(u64::MAX),
            "spoke ready"
        );
        let record = fields([
            ("app", Value::from(self.app.as_str())),
            ("pid", Value::from(running.runtime_pid)),
            ("app_pid", Value::from(running.app_pid)),
        ]);
        self.audit.note("spoke_start", record).await;
        inner.state = SpokeState::Ready;
        inner.running = Some(running.clone());
        if let Err(error) = self.catalogs.observe(&self.app, &running.catalog.tools, Trigger::Start).await {
            // Fail closed: a spoke whose catalog the hub could not check or pin serves no call.
            tracing::error!(app = %self.app, "stopping the new spoke because its catalog was not checked: {error}");
            running.stopping.store(true, Ordering::Release);
            running.kill();
            return Err(HubError::SpokeStart { app: self.app.clone(), reason: error.to_string() });
        }
        tokio::spawn(super::catalog_watch::follow(Arc::clone(self), Arc::clone(&running), self.catalogs.clone()));
        tokio::spawn(crate::sampling::follow(self.app.clone(), running.client.clone(), self.sampler.clone()));
        Ok(running)
    }

    fn schedule_restart(&self, inner: &mut Inner) {
        inner.consecutive_crashes = inner.consecutive_crashes.saturating_add(1);
        let delay = self.backoff.delay(inner.consecutive_crashes);
        inner.next_start = Some(tokio::time::Instant::now() + delay);
    }

    /// Starts the task that waits for the launcher's exit and records it.
    fn watch(self: &Arc<Self>, launched: Launched, limit_bytes: u64) -> Arc<RunningSpoke> {
        let Launched { mut launcher, runtime_pid, app_pid, client, cgroup, ledger, catalog, started_at, egress } = launched;
        let (exit_tx, exit_rx) = watch::channel(None);
        let running = Arc::new(RunningSpoke {
            client,
            catalog,
            runtime_pid,
            app_pid,
            launcher_pid: launcher.id(),
            started_at,
            started_instant: Instant::now(),
            cgroup: std::sync::Mutex::new(Some(cgroup)),
            calls: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            last_used: std::sync::Mutex::new(Instant::now()),
            stopping: AtomicBool::new(false),
            exit: exit_rx,
            egress,
        });
        let slot = Arc::clone(self);
        let spoke = Arc::clone(&running);
        tokio::spawn(async move {
            let status = launcher.wait().await;
            let cgroup = spoke.cgroup.lock().ok().and_then(|mut cgroup| cgroup.take());
            let oom_kills = cgroup.as_ref().and_then(|cgroup| cgroup.oom_kills().ok()).unwrap_or(0);
            let exit = if spoke.stopping.load(Ordering::Acquire) {
                SpokeExit::Stopped
            } else {
                match status {
                    Ok(status) => SpokeExit::from_status(status, oom_kills, limit_bytes),
                    Err(_) => SpokeExit::RuntimeFailed,
                }
            };
            if let Some(cgroup) = cgroup {
                if remove_cgroup(&slot.app, cgroup).await {
                    ledger.remove();
                }
            }
            slot.record_exit(&spoke, exit.clone()).await;
            exit_tx.send_replace(Some(exit));
        });
        running
    }

    async fn record_exit(&self, spoke: &Arc<RunningSpoke>, exit: SpokeExit) {
        let mut inner = self.inner.lock().await;
        let current = inner.running.as_ref().is_some_and(|running| Arc::ptr_eq(running, spoke));
        if exit == SpokeExit::Stopped {
            tracing::info!(app = %self.app, pid = spoke.runtime_pid, "spoke stopped");
        } else {
            tracing::warn!(app = %self.app, pid = spoke.runtime_pid, reason = exit.reason(), "spoke exited: the app {exit}");
        }
        let kind = match exit {
            SpokeExit::Stopped => "spoke_stop",
            SpokeExit::OutOfMemory { .. } => "spoke_oom",
            _ => "spoke_crash",
        };
        let record = fields([
            ("app", Value::from(self.app.as_str())),
            ("pid", Value::from(spoke.runtime_pid)),
            ("exit", Value::from(exit.to_string())),
        ]);
        self.audit.note(kind, record).await;
        if current {
            inner.running = None;
            inner.state = if exit == SpokeExit::Stopped { SpokeState::Stopped } else { SpokeState::Crashed };
            if exit != SpokeExit::Stopped {
                if spoke.started_instant.elapsed() > STABLE_AFTER {
                    inner.consecutive_crashes = 0;
                }
                self.schedule_restart(&mut inner);
            }
            inner.last_exit = Some(exit);
        }
    }

    /// Resets the crash counter after a successful call.
    pub async fn record_success(&self) {
        let mut inner = self.inner.lock().await;
        inner.consecutive_crashes = 0;
        inner.next_start = None;
    }

    pub async fn state(&self) -> SpokeState {
        self.inner.lock().await.state
    }

    pub async fn info(&self) -> Option<SpokeInfo> {
        let inner = self.inner.lock().await;
        let running = inner.running.clone();
        let last_exit = inner.last_exit.as_ref().map(ToString::to_string).unwrap_or_default();
        let info = SpokeInfo {
            app: self.app.clone(),
            pid: running.as_ref().map_or(0, |r| r.runtime_pid),
            app_pid: running.as_ref().map_or(0, |r| r.app_pid),
            state: inner.state,
            started_at_ms: running.as_ref().map_or(0, |r| {
                u64::try_from(r.started_at.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(0)
            }),
            restarts: inner.restarts,
            last_exit,
            memory_bytes: running.as_ref().map_or(0, |r| r.memory_bytes()),
            calls: running.as_ref().map_or(0, |r| r.calls.load(Ordering::Relaxed)),
            egress: running
                .as_ref()
                .and_then(|r| r.egress.as_ref())
                .map(|stats| stats.snapshot())
                .unwrap_or_default(),
        };
        Some(info)
    }

    pub async fn is_idle_for(&self, idle: Duration) -> bool {
        let inner = self.inner.lock().await;
        let Some(running) = &inner.running else { return false };
        if running.in_flight.load(Ordering::Acquire) > 0 {
            return false;
        }
        running.last_used.lock().map(|last| last.elapsed() >= idle).unwrap_or(false)
    }

    /// Kills the spoke at once, for a call that outlived its timeout.
    pub async fn kill(&self, spoke: &Arc<RunningSpoke>) {
        spoke.stopping.store(true, Ordering::Release);
        spoke.kill();
        let _ = spoke.wait_exit(Duration::from_secs(2)).await;
    }

    /// Stops the spoke: the runtime gets `grace` to stop the app, then everything is killed.
    pub async fn stop(&self, grace: Duration) {
        let running = {
            let mut inner = self.inner.lock().await;
            let Some(running) = inner.running.clone() else { return };
            inner.state = SpokeState::Stopping;
            running
        };
        running.stopping.store(true, Ordering::Release);
        let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        let mut client = running.client.clone();
        let asked = tokio::time::timeout(Duration::from_millis(200), client.shutdown(ShutdownRequest { grace_ms })).await;
        let exited = matches!(asked, Ok(Ok(_))) && running.wait_exit(grace + Duration::from_millis(300)).await.is_some();
        if !exited {
            running.kill();
            if running.wait_exit(Duration::from_secs(2)).await.is_none() {
                tracing::warn!(app = %self.app, pid = running.runtime_pid, "spoke did not exit after SIGKILL");
            }
        }
    }
}

/// Removes a spoke's cgroup off the async workers, because killing stragglers and retrying rmdir can
/// block for seconds. The `bulkhead` folder above it goes too once it is empty. Returns whether the
/// cgroup was removed.
pub async fn remove_cgroup(app: &str, cgroup: SpokeCgroup) -> bool {
    let parents: Vec<std::path::PathBuf> =
        cgroup.dirs().iter().filter_map(|dir| dir.parent().map(std::path::Path::to_path_buf)).collect();
    let removed = tokio::task::spawn_blocking(move || {
        let result = cgroup.remove();
        for parent in parents {
            // Fails harmlessly while another spoke's cgroup is still inside.
            let _ = std::fs::remove_dir(parent);
        }
        result
    })
    .await;
    match removed {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::warn!(app, "cannot remove the spoke's cgroup: {error}");
            false
        }
        Err(error) => {
            tracing::warn!(app, "the cgroup removal task failed: {error}");
            false
        }
    }
}
