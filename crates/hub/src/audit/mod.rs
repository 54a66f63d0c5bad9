//! The hub's audit log writer: appends hash-chained records to `<state>/audit.log`.
//!
//! A decision record is made durable with fsync before the decision takes effect, which also
//! flushes every record written before it. Other records (calls, results, lifecycle events) are
//! written to the file before the action goes ahead but reach the disk with the next decision, or
//! within `FLUSH_INTERVAL`, so that a plain tool call does not wait for the disk.
//!
//! The record format and its verification live in the bulkhead-audit crate, which the CLI shares.

#[cfg(test)]
mod tests;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::{Map, Value};

pub use bulkhead_audit::FILE_NAME;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot open the audit log {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the audit log {path} fails verification: {reason}; move it aside to start a new chain, \
         and keep the old file as evidence"
    )]
    Broken { path: String, reason: String },
    #[error("cannot write the audit log {path}: {source}; free space on its file system or fix its permissions")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("the audit log writer task failed: {0}")]
    Task(String),
}

/// The maximum time a written record waits for its fsync.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Whether an append waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    Synced,
    Written,
}

/// The append-only audit log of one hub.
pub struct AuditLog {
    path: PathBuf,
    record_arguments: bool,
    writer: Mutex<Writer>,
    /// Set when records were written since the last fsync.
    dirty: AtomicBool,
}

/// The open file and the chain's head, which each append advances.
struct Writer {
    file: File,
    next_seq: u64,
    prev: String,
    len: u64,
}

impl AuditLog {
    /// Opens `<state>/audit.log`, creating it with mode 0600, after verifying the records it
    /// already holds. A log that fails verification stops the hub rather than extending a broken
    /// chain.
    pub fn open(state: &Path, record_arguments: bool) -> Result<Arc<AuditLog>, AuditError> {
        let path = state.join(FILE_NAME);
        let shown = path.display().to_string();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| AuditError::Open {
                path: shown.clone(),
                source,
            })?;
        let bytes = std::fs::read(&path).map_err(|source| AuditError::Open {
            path: shown.clone(),
            source,
        })?;
        let report = bulkhead_audit::verify(&bytes).map_err(|error| AuditError::Broken {
            path: shown.clone(),
            reason: error.to_string(),
        })?;
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        Ok(AuditLog::with_file(
            path,
            file,
            report.records + 1,
            report.head,
            len,
            record_arguments,
        ))
    }

    fn with_file(
        path: PathBuf,
        file: File,
        next_seq: u64,
        prev: String,
        len: u64,
        record_arguments: bool,
    ) -> Arc<AuditLog> {
        let log = Arc::new(AuditLog {
            path,
            record_arguments,
            writer: Mutex::new(Writer {
                file,
                next_seq,
                prev,
                len,
            }),
            dirty: AtomicBool::new(false),
        });
        spawn_flusher(Arc::downgrade(&log));
        log
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns how a record stores a call's arguments: the JSON itself when `[audit]
    /// record_arguments` is on, otherwise its SHA-256 digest and size.
    pub fn arguments(&self, arguments_json: &str) -> Value {
        if self.record_arguments {
            let value = serde_json::from_str(arguments_json)
                .unwrap_or_else(|_| Value::from(arguments_json));
            let mut object = Map::new();
            object.insert("json".into(), value);
            return Value::Object(object);
        }
        bulkhead_audit::digest_fields(arguments_json.as_bytes())
    }

    /// Appends one record and fsyncs it, and returns its sequence number. On error nothing of the
    /// record stays in the file, so the chain stays valid. Use it for decisions.
    pub async fn record(
        self: &Arc<Self>,
        kind: &'static str,
        fields: Map<String, Value>,
    ) -> Result<u64, AuditError> {
        let log = Arc::clone(self);
        tokio::task::spawn_blocking(move || log.append(kind, fields, Durability::Synced))
            .await
            .map_err(|error| AuditError::Task(error.to_string()))?
    }

    /// Appends one record without waiting for the disk, and returns its sequence number. The
    /// record reaches the disk with the next synced record or within `FLUSH_INTERVAL`.
    pub fn write(&self, kind: &'static str, fields: Map<String, Value>) -> Result<u64, AuditError> {
        self.append(kind, fields, Durability::Written)
    }

    /// Appends a record of an event that already happened. A failure is logged, because there
    /// is no action left to stop.
    pub async fn note(self: &Arc<Self>, kind: &'static str, fields: Map<String, Value>) {
        if let Err(error) = self.write(kind, fields) {
            tracing::error!(kind, "{error}");
        }
    }

    /// Fsyncs the records written since the last fsync.
    fn flush(&self) {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return;
        }
        let writer = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(error) = writer.file.sync_data() {
            self.dirty.store(true, Ordering::Release);
            tracing::error!(path = %self.path.display(), "cannot fsync the audit log: {error}");
        }
    }

    fn append(&self, kind: &str, fields: Map<String, Value>, durability: Durability) -> Result<u64, AuditError> {
        let mut writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let seq = writer.next_seq;
        let sealed = bulkhead_audit::seal(seq, &time, kind, fields, &writer.prev);
        let mut line = sealed.line.into_bytes();
        line.push(b'\n');
        let written = writer.file.write_all(&line).and_then(|()| match durability {
            Durability::Synced => writer.file.sync_data(),
            Durability::Written => Ok(()),
        });
        if let Err(source) = written {
            // Cut off a partial line so that later records still extend a valid chain.
            let len = writer.len;
            if let Err(error) = writer.file.set_len(len) {
                tracing::error!(path = %self.path.display(), "cannot cut a partial audit record: {error}");
            }
            return Err(AuditError::Write {
                path: self.path.display().to_string(),
                source,
            });
        }
        writer.len += u64::try_from(line.len()).unwrap_or(u64::MAX);
        writer.next_seq += 1;
        writer.prev = sealed.hash;
        match durability {
            Durability::Synced => self.dirty.store(false, Ordering::Release),
            Durability::Written => self.dirty.store(true, Ordering::Release),
        }
        Ok(seq)
    }
}

/// Starts the thread that fsyncs written records every `FLUSH_INTERVAL`. It ends with the log.
fn spawn_flusher(log: Weak<AuditLog>) {
    let spawned = std::thread::Builder::new().name("audit-flush".into()).spawn(move || loop {
        std::thread::sleep(FLUSH_INTERVAL);
        match log.upgrade() {
            Some(log) => log.flush(),
            None => return,
        }
    });
    if let Err(error) = spawned {
        tracing::error!("cannot start the audit log flusher; records wait for the next decision: {error}");
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Builds a record's fields from key and value pairs.
pub fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect()
}
