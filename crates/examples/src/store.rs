//! Crash-safe files in the state directory: an append-only JSON Lines log, and a JSON document
//! that is replaced whole through a temporary file and a rename.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Serialize};
use thiserror::Error;

/// Failure to read or write a file in the state directory.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("state directory {path}: {source}; set BULKHEAD_STATE_DIR to an existing directory")]
    StateDir { path: PathBuf, source: io::Error },
    #[error("state directory {path} is not a directory; set BULKHEAD_STATE_DIR to a directory")]
    NotADirectory { path: PathBuf },
    #[error("open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} line {line}: invalid record: {source}; fix or delete that line")]
    ParseLine {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
    #[error("{path}: invalid JSON document: {source}; fix or delete the file")]
    ParseDocument {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("truncate {path} to {len} bytes: {source}")]
    Truncate {
        path: PathBuf,
        len: u64,
        source: io::Error,
    },
    #[error("encode a record for {path}: {source}")]
    Encode {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("fsync {path}: {source}")]
    Sync { path: PathBuf, source: io::Error },
    #[error("rename {from} to {to}: {source}")]
    Rename {
        from: PathBuf,
        to: PathBuf,
        source: io::Error,
    },
}

/// Checks that `dir` exists and is a directory, so that a wrong `BULKHEAD_STATE_DIR` fails at
/// start and not at the first write.
pub fn check_state_dir(dir: &Path) -> Result<(), StoreError> {
    let metadata = fs::metadata(dir).map_err(|source| StoreError::StateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    if !metadata.is_dir() {
        return Err(StoreError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    Ok(())
}

/// An append-only file with one JSON record per line, each append flushed with fsync.
#[derive(Debug)]
pub struct JsonLinesFile {
    path: PathBuf,
    file: File,
    /// Length of the file after the last complete line.
    len: u64,
}

impl JsonLinesFile {
    /// Opens or creates `path` and parses every complete line as a `T`.
    ///
    /// A last line without a newline is the remains of a write that a crash cut short. Its
    /// record was never confirmed to a client, so it is logged and truncated away.
    pub fn open<T: DeserializeOwned>(path: &Path) -> Result<(Self, Vec<T>), StoreError> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|source| StoreError::Read {
                path: path.to_path_buf(),
                source,
            })?;

        let complete_len = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let records = parse_lines(path, &bytes[..complete_len])?;
        let mut log = Self {
            path: path.to_path_buf(),
            file,
            len: len_u64(complete_len),
        };
        if complete_len < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                bytes = bytes.len() - complete_len,
                "dropping an unfinished last line left by an interrupted write"
            );
            log.truncate_to_last_line()?;
        }
        Ok((log, records))
    }

    /// Appends `record` as one line and fsyncs the file before returning.
    ///
    /// On failure the file is cut back to its previous length, so that a partly written line
    /// cannot merge with the next record.
    pub fn append<T: Serialize>(&mut self, record: &T) -> Result<(), StoreError> {
        let mut line = serde_json::to_vec(record).map_err(|source| StoreError::Encode {
            path: self.path.clone(),
            source,
        })?;
        line.push(b'\n');

        let written = self
            .file
            .write_all(&line)
            .map_err(|source| StoreError::Write {
                path: self.path.clone(),
                source,
            })
            .and_then(|()| {
                self.file.sync_data().map_err(|source| StoreError::Sync {
                    path: self.path.clone(),
                    source,
                })
            });
        match written {
            Ok(()) => {
                self.len += len_u64(line.len());
                Ok(())
            }
            Err(err) => {
                if let Err(truncate_err) = self.truncate_to_last_line() {
                    tracing::error!(
                        path = %self.path.display(),
                        error = %truncate_err,
                        "failed to undo a failed append"
                    );
                }
                Err(err)
            }
        }
    }

    fn truncate_to_last_line(&mut self) -> Result<(), StoreError> {
        let truncate_error = |source| StoreError::Truncate {
            path: self.path.clone(),
            len: self.len,
            source,
        };
        self.file.set_len(self.len).map_err(truncate_error)?;
        self.file.sync_data().map_err(|source| StoreError::Sync {
            path: self.path.clone(),
            source,
        })
    }
}

fn parse_lines<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<Vec<T>, StoreError> {
    let mut records = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record = serde_json::from_slice(line).map_err(|source| StoreError::ParseLine {
            path: path.to_path_buf(),
            line: index + 1,
            source,
        })?;
        records.push(record);
    }
    Ok(records)
}

/// Reads the JSON document at `path`, or returns `None` when the file does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StoreError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StoreError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| StoreError::ParseDocument {
            path: path.to_path_buf(),
            source,
        })
}

/// Replaces the JSON document at `path` with `value`: it writes `<path>.tmp`, fsyncs it, renames
/// it over `path` and fsyncs the directory, so a crash leaves either the old or the new document.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| StoreError::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    bytes.push(b'\n');

    let mut temp_name = path.as_os_str().to_owned();
    temp_name.push(".tmp");
    let temp_path = PathBuf::from(temp_name);
    write_and_sync(&temp_path, &bytes)?;

    fs::rename(&temp_path, path).map_err(|source| StoreError::Rename {
        from: temp_path.clone(),
        to: path.to_path_buf(),
        source,
    })?;
    sync_parent_dir(path)
}

fn write_and_sync(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = File::create(path).map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    file.write_all(bytes).map_err(|source| StoreError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    file.sync_all().map_err(|source| StoreError::Sync {
        path: path.to_path_buf(),
        source,
    })
}

fn sync_parent_dir(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let sync_error = |source| StoreError::Sync {
        path: dir.to_path_buf(),
        source,
    };
    File::open(dir)
        .map_err(sync_error)?
        .sync_all()
        .map_err(sync_error)
}

fn len_u64(len: usize) -> u64 {
    // usize is at most 64 bits on every target that Rust supports.
    u64::try_from(len).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Record {
        n: u32,
    }

    #[test]
    fn json_lines_round_trip() {
        let dir = tempfile::tempdir().expect("create temp dir");
        let path = dir.path().join("log.jsonl");

        let (mut log, records) = JsonLinesFile::open::<Record>(&path).expect("open new log");
        assert!(records.is_empty());
        log.append(&Record { n: 1 }).expect("append 1");
        log.append(&Record { n: 2 }).expect("append 2");
        drop(log);

        let (_, records) = JsonLinesFile::open::<Record>(&path).expect("reopen log");
        assert_eq!(records, vec![Record { n: 1 }, Record { n: 2 }]);
        let text = fs::read_to_string(&path).expect("read log");
        assert_eq!(text, "{\"n\":1}\n{\"n\":2}\n");
    }

    #[test]
    fn json_lines_drops_unfinished_line() {
        let dir = tempfile::tempdir().expect("create temp dir");
        let path = dir.path().join("log.jsonl");
        fs::write(&path, "{\"n\":1}\n{\"n\":").expect("write log");

        let (mut log, records) = JsonLinesFile::open::<Record>(&path).expect("open log");
        assert_eq!(records, vec![Record { n: 1 }]);
        log.append(&Record { n: 2 }).expect("append");

        let text = fs::read_to_string(&path).expect("read log");
        assert_eq!(text, "{\"n\":1}\n{\"n\":2}\n");
    }

    #[test]
    fn json_lines_rejects_corrupt_line() {
        let dir = tempfile::tempdir().expect("create temp dir");
        let path = dir.path().join("log.jsonl");
        fs::write(&path, "{\"n\":1}\n\nnot json\n").expect("write log");

        let err = JsonLinesFile::open::<Record>(&path).expect_err("corrupt line must fail");
        assert!(
            matches!(err, StoreError::ParseLine { line: 3, .. }),
            "unexpected error: {err}"
        );
    }

    #[test]
    fn atomic_write_replaces_document() {
        let dir = tempfile::tempdir().expect("create temp dir");
        let path = dir.path().join("doc.json");
        assert_eq!(read_json::<Vec<Record>>(&path).expect("read missing"), None);

        write_json_atomic(&path, &vec![Record { n: 1 }]).expect("first write");
        write_json_atomic(&path, &vec![Record { n: 2 }]).expect("second write");

        let read: Option<Vec<Record>> = read_json(&path).expect("read back");
        assert_eq!(read, Some(vec![Record { n: 2 }]));
        assert!(!dir.path().join("doc.json.tmp").exists());
    }

    #[test]
    fn state_dir_must_exist() {
        let dir = tempfile::tempdir().expect("create temp dir");
        check_state_dir(dir.path()).expect("temp dir is a directory");

        let missing = dir.path().join("missing");
        let err = check_state_dir(&missing).expect_err("missing dir must fail");
        assert!(err.to_string().contains("BULKHEAD_STATE_DIR"), "{err}");
    }
}
