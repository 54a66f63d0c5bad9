//! sd_notify messages to the service manager: readiness, reload, stop, status and watchdog pings.
//! Every function does nothing when NOTIFY_SOCKET is unset.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::task::JoinHandle;

use crate::hub::Hub;

/// Environment switch for the watchdog test: when it is "1", the hub sends READY=1 but never pings
/// the watchdog, so the service manager sees a hung hub and restarts it.
pub const TEST_HANG_ENV: &str = "BULKHEAD_TEST_HANG_AFTER_READY";

/// How often the STATUS line is recomputed and sent when it changed.
const STATUS_INTERVAL: Duration = Duration::from_secs(5);

fn send(states: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, "cannot send a notification to the service manager");
    }
}

/// READY=1 with a STATUS line, once the hub serves.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// STOPPING=1, when shutdown begins.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// RELOADING=1 with MONOTONIC_USEC, before a reload. systemd's Type=notify-reload needs both in one
/// message to match the reload it asked for with SIGHUP.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now, NotifyState::Status("reloading manifests")]),
        Err(error) => tracing::warn!(%error, "cannot read the monotonic clock for RELOADING=1"),
    }
}

/// STATUS= with a free-form line.
pub fn status(line: &str) {
    send(&[NotifyState::Status(line)]);
}

/// Formats the STATUS line from the hub's counts.
pub fn status_line(apps: usize, spokes: usize, pending_approvals: usize) -> String {
    format!("apps: {apps}, spokes: {spokes}, pending approvals: {pending_approvals}")
}

/// Reads the hub's counts and formats its STATUS line. `spokes` counts the spokes that are not
/// stopped.
pub async fn hub_status_line(hub: &Hub) -> String {
    let (apps, _) = hub.apps().await;
    let spokes = hub.supervisor.spokes().await;
    let live = spokes
        .iter()
        .filter(|spoke| spoke.state != crate::supervisor::SpokeState::Stopped)
        .count();
    status_line(apps.len(), live, hub.pending_approvals())
}

/// Sends the hub's STATUS line every few seconds when it differs from the last one sent, starting
/// from `sent`, until the task is aborted.
pub fn spawn_status_updates(hub: Arc<Hub>, sent: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = sent;
        let start = tokio::time::Instant::now() + STATUS_INTERVAL;
        let mut ticks = tokio::time::interval_at(start, STATUS_INTERVAL);
        loop {
            ticks.tick().await;
            let line = hub_status_line(&hub).await;
            if line != last {
                status(&line);
                last = line;
            }
        }
    })
}

/// Returns the watchdog ping interval: half of WATCHDOG_USEC, as systemd.service(5) recommends.
/// Returns None when the service manager set no watchdog for this process.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|timeout| timeout / 2)
}

/// Sends WATCHDOG=1 at half of WATCHDOG_USEC from a task on the hub's runtime, so a runtime that
/// stops making progress stops the pings. Returns None without a watchdog, or when the test switch
/// [`TEST_HANG_ENV`] asks for a hub that never pings.
pub fn spawn_watchdog() -> Option<JoinHandle<()>> {
    let interval = watchdog_interval()?;
    if std::env::var(TEST_HANG_ENV).is_ok_and(|value| value == "1") {
        tracing::warn!(env = TEST_HANG_ENV, "test switch set: not sending watchdog pings");
        return None;
    }
    tracing::info!(interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX), "sending watchdog pings");
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        loop {
            ticks.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_names_every_count() {
        assert_eq!(status_line(3, 1, 0), "apps: 3, spokes: 1, pending approvals: 0");
    }
}
