//! The apps' captured stderr: a ring buffer of recent lines per app, and a broadcast channel for
//! followers of `bulkhead logs APP -f`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

/// Bytes of stderr kept per app. The oldest lines are dropped first.
pub const MAX_BYTES_PER_APP: usize = 1024 * 1024;
/// Lines a follower may fall behind before it skips ahead.
const FOLLOW_BACKLOG: usize = 1024;

/// One captured stderr line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub text: String,
    pub received_at_ms: u64,
}

#[derive(Debug)]
struct AppLog {
    lines: VecDeque<LogEntry>,
    bytes: usize,
    followers: broadcast::Sender<LogEntry>,
}

impl AppLog {
    fn new() -> AppLog {
        AppLog {
            lines: VecDeque::new(),
            bytes: 0,
            followers: broadcast::channel(FOLLOW_BACKLOG).0,
        }
    }
}

/// The stderr lines of every app, each app capped at `max_bytes`.
#[derive(Debug)]
pub struct AppLogs {
    max_bytes: usize,
    apps: Mutex<HashMap<String, AppLog>>,
}

impl AppLogs {
    pub fn new(max_bytes: usize) -> AppLogs {
        AppLogs {
            max_bytes,
            apps: Mutex::new(HashMap::new()),
        }
    }

    /// Appends one line of `app`'s stderr, drops the oldest lines beyond the cap, and sends the
    /// line to the followers. A single line longer than the cap is kept alone.
    pub fn push(&self, app: &str, text: String) {
        let received_at_ms = u64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(0);
        let entry = LogEntry {
            text,
            received_at_ms,
        };
        let Ok(mut apps) = self.apps.lock() else {
            return;
        };
        let log = apps.entry(app.to_string()).or_insert_with(AppLog::new);
        log.bytes += entry.text.len();
        log.lines.push_back(entry.clone());
        while log.bytes > self.max_bytes && log.lines.len() > 1 {
            if let Some(dropped) = log.lines.pop_front() {
                log.bytes -= dropped.text.len();
            }
        }
        // Sending fails only when the app has no follower, and then the line is only kept.
        let _ = log.followers.send(entry);
    }

    /// Returns the kept lines of `app`, oldest first, and a receiver of the lines that follow them.
    /// Both are taken under one lock, so no line is lost or repeated between them.
    pub fn subscribe(&self, app: &str) -> (Vec<LogEntry>, broadcast::Receiver<LogEntry>) {
        let mut apps = self
            .apps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let log = apps.entry(app.to_string()).or_insert_with(AppLog::new);
        (
            log.lines.iter().cloned().collect(),
            log.followers.subscribe(),
        )
    }

    /// Returns the bytes kept for `app`.
    pub fn kept_bytes(&self, app: &str) -> usize {
        let apps = self
            .apps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        apps.get(app).map_or(0, |log| log.bytes)
    }
}

/// Returns the hub's one store. The spoke launcher writes each stderr line here, and LogService
/// reads it.
pub fn global() -> &'static AppLogs {
    static LOGS: OnceLock<AppLogs> = OnceLock::new();
    LOGS.get_or_init(|| AppLogs::new(MAX_BYTES_PER_APP))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(entries: &[LogEntry]) -> Vec<&str> {
        entries.iter().map(|entry| entry.text.as_str()).collect()
    }

    #[test]
    fn oldest_lines_dropped_at_cap() {
        let logs = AppLogs::new(10);
        logs.push("notes", "aaaa".into());
        logs.push("notes", "bbbb".into());
        logs.push("notes", "cccc".into());
        let (kept, _) = logs.subscribe("notes");
        assert_eq!(texts(&kept), ["bbbb", "cccc"]);
        assert_eq!(logs.kept_bytes("notes"), 8);
    }

    #[test]
    fn overlong_line_kept_alone() {
        let logs = AppLogs::new(4);
        logs.push("notes", "ab".into());
        logs.push("notes", "0123456789".into());
        let (kept, _) = logs.subscribe("notes");
        assert_eq!(texts(&kept), ["0123456789"]);
    }

    #[test]
    fn apps_capped_separately() {
        let logs = AppLogs::new(4);
        logs.push("notes", "1234".into());
        logs.push("mail", "5678".into());
        assert_eq!(texts(&logs.subscribe("notes").0), ["1234"]);
        assert_eq!(texts(&logs.subscribe("mail").0), ["5678"]);
    }

    #[test]
    fn follower_receives_later_lines() {
        let logs = AppLogs::new(100);
        logs.push("notes", "before".into());
        let (kept, mut follower) = logs.subscribe("notes");
        logs.push("notes", "after".into());
        assert_eq!(texts(&kept), ["before"]);
        assert_eq!(follower.try_recv().expect("a followed line").text, "after");
        assert!(follower.try_recv().is_err());
    }
}
