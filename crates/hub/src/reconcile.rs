//! The spoke ledger and the startup reconcile.
//!
//! Before a spoke's launcher starts, the hub writes the spoke's cgroup directories into one file
//! under `<state>/spokes/`, and deletes that file once the cgroup is removed. A hub that was killed
//! (SIGKILL, OOM, watchdog) leaves its files behind, so the next start kills whatever is still in
//! those cgroups and removes them before serving. Only cgroups recorded by this state directory are
//! touched, so two hubs that share a parent cgroup never remove each other's spokes.

use std::path::{Path, PathBuf};

/// The ledger folder's name under the state directory.
const LEDGER_DIR: &str = "spokes";

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("cannot create the spoke ledger folder {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot record the spoke's cgroup in {path}: {source}")]
    Record {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "cannot read the spoke ledger folder {path}: {source}; fix its permissions or remove it"
    )]
    ReadDir {
        path: String,
        source: std::io::Error,
    },
}

/// One recorded spoke: the ledger file that lists its cgroup directories.
#[derive(Debug)]
pub struct LedgerEntry {
    path: PathBuf,
}

impl LedgerEntry {
    /// Writes the ledger file `<state>/spokes/<name>` with one cgroup directory a line, and syncs it
    /// so that it survives a crash right after the launcher starts.
    pub fn record(
        state: &Path,
        name: &str,
        dirs: &[PathBuf],
    ) -> Result<LedgerEntry, ReconcileError> {
        use std::io::Write;

        let folder = state.join(LEDGER_DIR);
        std::fs::create_dir_all(&folder).map_err(|source| ReconcileError::CreateDir {
            path: folder.display().to_string(),
            source,
        })?;
        let path = folder.join(name);
        let text: String = dirs
            .iter()
            .map(|dir| format!("{}\n", dir.display()))
            .collect();
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&path)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()
        };
        write().map_err(|source| ReconcileError::Record {
            path: path.display().to_string(),
            source,
        })?;
        Ok(LedgerEntry { path })
    }

    /// Deletes the ledger file, after the spoke's cgroup was removed.
    pub fn remove(self) {
        if let Err(error) = std::fs::remove_file(&self.path) {
            if error.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), "cannot delete the spoke ledger entry: {error}");
            }
        }
    }
}

/// Outcome of the startup reconcile: leftover spokes found, and cgroups removed or not.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// Ledger files left by the previous run.
    pub leftover_spokes: usize,
    /// Cgroup directories that still existed and were emptied and removed.
    pub removed_cgroups: usize,
    /// Cgroup directories that could not be removed. Each is logged with its error.
    pub failed_cgroups: usize,
}

/// Kills the processes in every cgroup that the ledger under `state` lists, removes those cgroups
/// and their `bulkhead` parent when it is empty, and deletes the ledger files. Blocks for up to a
/// few seconds per cgroup, so async callers run it with `spawn_blocking`.
pub fn reconcile(state: &Path) -> Result<Reconciled, ReconcileError> {
    let folder = state.join(LEDGER_DIR);
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Reconciled::default())
        }
        Err(source) => {
            return Err(ReconcileError::ReadDir {
                path: folder.display().to_string(),
                source,
            })
        }
    };
    let mut report = Reconciled::default();
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if !entry.file_type().is_ok_and(|kind| kind.is_file()) {
            continue;
        }
        report.leftover_spokes += 1;
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut all_removed = true;
        for dir in text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(PathBuf::from)
        {
            if !dir.exists() {
                continue;
            }
            match bulkhead_sandbox::cgroup::remove_stale(&dir) {
                Ok(()) => {
                    report.removed_cgroups += 1;
                    tracing::info!(cgroup = %dir.display(), "removed a spoke cgroup left by the previous run");
                    if let Some(parent) = dir.parent() {
                        // Fails harmlessly while another spoke's cgroup is still inside.
                        let _ = std::fs::remove_dir(parent);
                    }
                }
                Err(error) => {
                    all_removed = false;
                    report.failed_cgroups += 1;
                    tracing::error!(cgroup = %dir.display(), "cannot remove a spoke cgroup left by the previous run: {error}");
                }
            }
        }
        if all_removed {
            LedgerEntry { path }.remove();
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_state(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("bulkhead-reconcile-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp state dir");
        dir
    }

    #[test]
    fn ledger_entry_written_and_removed() {
        let state = temp_state("entry");
        let dirs = vec![
            PathBuf::from("/sys/fs/cgroup/x/bulkhead/notes-1"),
            PathBuf::from("/y/bulkhead/notes-1"),
        ];
        let entry = LedgerEntry::record(&state, "notes-1", &dirs).expect("record");
        let text = std::fs::read_to_string(state.join("spokes/notes-1")).expect("ledger file");
        assert_eq!(
            text,
            "/sys/fs/cgroup/x/bulkhead/notes-1\n/y/bulkhead/notes-1\n"
        );
        entry.remove();
        assert!(!state.join("spokes/notes-1").exists());
        std::fs::remove_dir_all(&state).expect("cleanup");
    }

    #[test]
    fn reconcile_drops_entries_of_vanished_cgroups() {
        let state = temp_state("vanished");
        let missing = state.join("no-such-cgroup/bulkhead/notes-2");
        LedgerEntry::record(&state, "notes-2", &[missing]).expect("record");
        let report = reconcile(&state).expect("reconcile");
        assert_eq!(
            report,
            Reconciled {
                leftover_spokes: 1,
                removed_cgroups: 0,
                failed_cgroups: 0
            }
        );
        assert!(!state.join("spokes/notes-2").exists());
        std::fs::remove_dir_all(&state).expect("cleanup");
    }

    #[test]
    fn reconcile_rejects_dirs_outside_bulkhead() {
        let state = temp_state("outside");
        let other = state.join("not-a-spoke-parent/notes-3");
        std::fs::create_dir_all(&other).expect("create a directory that is not a spoke cgroup");
        LedgerEntry::record(&state, "notes-3", std::slice::from_ref(&other)).expect("record");
        let report = reconcile(&state).expect("reconcile");
        assert_eq!(report.failed_cgroups, 1);
        assert!(
            other.exists(),
            "a directory outside a bulkhead folder must never be removed"
        );
        assert!(
            state.join("spokes/notes-3").exists(),
            "the entry stays for the operator to inspect"
        );
        std::fs::remove_dir_all(&state).expect("cleanup");
    }

    #[test]
    fn reconcile_without_ledger_is_empty() {
        let state = temp_state("empty");
        assert_eq!(reconcile(&state).expect("reconcile"), Reconciled::default());
        std::fs::remove_dir_all(&state).expect("cleanup");
    }
}
