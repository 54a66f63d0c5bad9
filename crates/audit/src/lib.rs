//! The bulkhead audit log format: one JSON object per line, chained by SHA-256.
//!
//! Each record is a JSON object with the keys `seq`, `time`, `kind`, `fields`, `prev` and `hash`.
//! `prev` is the `hash` of the record before it, or 64 zeros for the first record. `hash` is the
//! SHA-256 of the record's canonical line without the `hash` key. A record's canonical line is
//! its compact JSON with the keys sorted, exactly as [`seal`] writes it. Changing any byte of a
//! line, removing a line or swapping two lines therefore breaks the chain, and [`verify`] names
//! the first record that fails.
//!
//! NOTE: removing records from the end of the log leaves a valid, shorter chain. Only a copy of
//! the head hash kept elsewhere (`bulkhead audit verify` prints it) detects that.

mod verify;

pub use verify::{verify, verify_file, Report, VerifyError};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The file name of the audit log inside the hub's state directory.
pub const FILE_NAME: &str = "audit.log";

/// The `prev` value of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Returns the lower-case hex SHA-256 digest of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut text = String::with_capacity(64);
    for byte in digest.iter() {
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    text
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// One sealed record: its line without the trailing newline, and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub line: String,
    pub hash: String,
}

/// Builds the canonical line of a record and its hash. `time` is an RFC 3339 timestamp and
/// `fields` a JSON object.
pub fn seal(seq: u64, time: &str, kind: &str, fields: Map<String, Value>, prev: &str) -> Sealed {
    let mut object = Map::new();
    object.insert("seq".into(), Value::from(seq));
    object.insert("time".into(), Value::from(time));
    object.insert("kind".into(), Value::from(kind));
    object.insert("fields".into(), Value::Object(fields));
    object.insert("prev".into(), Value::from(prev));
    let hash = content_hash(&object);
    object.insert("hash".into(), Value::from(hash.clone()));
    Sealed {
        line: canonical(&object),
        hash,
    }
}

/// Returns the hash of a record object, which must not contain `hash`.
fn content_hash(object: &Map<String, Value>) -> String {
    sha256_hex(canonical(object).as_bytes())
}

/// Serializes a record object with its keys, and the keys of every nested object, sorted.
fn canonical(object: &Map<String, Value>) -> String {
    sorted(&Value::Object(object.clone())).to_string()
}

/// Returns a copy of `value` whose objects list their keys in sorted order, whatever order the
/// serde_json map type keeps.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(object) => {
            let mut keys: Vec<&String> = object.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for key in keys {
                out.insert(key.clone(), sorted(&object[key]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Builds the record of an argument value as the log stores it by default: its digest and size.
pub fn digest_fields(bytes: &[u8]) -> Value {
    let mut object = Map::new();
    object.insert("sha256".into(), Value::from(sha256_hex(bytes)));
    object.insert("bytes".into(), Value::from(bytes.len()));
    Value::Object(object)
}

#[cfg(test)]
mod tests;
