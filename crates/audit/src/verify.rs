//! Checking the hash chain of an audit log.

use std::path::Path;

use serde_json::{Map, Value};

use crate::{canonical, content_hash, GENESIS};

/// The first record of a log that fails verification.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("record {record} (line {line}) {reason}")]
pub struct VerifyError {
    /// The sequence number the record should have, which is also its 1-based position.
    pub record: u64,
    pub line: usize,
    pub reason: String,
}

/// The result of a successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub records: u64,
    /// The hash of the last record, or [`GENESIS`] for an empty log.
    pub head: String,
}

/// Reads and verifies the audit log at `path`. A missing file is an I/O error, not an empty log.
pub fn verify_file(path: &Path) -> std::io::Result<Result<Report, VerifyError>> {
    let bytes = std::fs::read(path)?;
    Ok(verify(&bytes))
}

/// Verifies every record of a log's contents, in order.
pub fn verify(bytes: &[u8]) -> Result<Report, VerifyError> {
    let mut prev = GENESIS.to_string();
    let mut count: u64 = 0;
    let mut lines = bytes.split(|byte| *byte == b'\n').peekable();
    let mut number = 0;
    while let Some(raw) = lines.next() {
        number += 1;
        let expected = count + 1;
        let fail = |reason: String| VerifyError {
            record: expected,
            line: number,
            reason,
        };
        if raw.is_empty() && lines.peek().is_none() {
            break;
        }
        let text = std::str::from_utf8(raw).map_err(|_| fail("is not valid UTF-8".into()))?;
        let object = parse(text).map_err(fail)?;
        if canonical(&object) != text {
            return Err(fail(
                "is not in canonical form: a byte was changed or inserted".into(),
            ));
        }
        if object.get("seq").and_then(Value::as_u64) != Some(expected) {
            return Err(fail(format!(
                "has sequence number {}, expected {expected}: a record was removed or reordered",
                object
                    .get("seq")
                    .map(ToString::to_string)
                    .unwrap_or_default()
            )));
        }
        let stored = object
            .get("hash")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut content = object.clone();
        content.remove("hash");
        if content_hash(&content) != stored {
            return Err(fail(
                "does not match its hash: its contents were changed".into(),
            ));
        }
        if object.get("prev").and_then(Value::as_str) != Some(prev.as_str()) {
            return Err(fail("does not carry the hash of the record before it: a record was removed or reordered".into()));
        }
        prev = stored;
        count = expected;
    }
    Ok(Report {
        records: count,
        head: prev,
    })
}

fn parse(text: &str) -> Result<Map<String, Value>, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|error| format!("is not valid JSON: {error}"))?;
    let Value::Object(object) = value else {
        return Err("is not a JSON object".into());
    };
    for key in ["seq", "time", "kind", "fields", "prev", "hash"] {
        if !object.contains_key(key) {
            return Err(format!("lacks the key {key:?}"));
        }
    }
    if object.len() != 6 {
        return Err("has keys other than seq, time, kind, fields, prev and hash".into());
    }
    Ok(object)
}
