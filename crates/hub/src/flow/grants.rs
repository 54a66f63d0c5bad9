//! Stored decisions. A session grant allows one flow in one session and lives in memory until
//! the hub stops. An "always" grant allows one flow for one principal in every session, and is
//! kept in `<state>/grants.json` so that it survives a restart.
//!
//! The file is replaced atomically: the new content goes to a temporary file in the same folder,
//! which is fsynced and renamed over the old one, and then the folder is fsynced.

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

/// The file name of the "always" grants inside the hub's state directory.
pub const FILE_NAME: &str = "grants.json";

/// The format version that this hub writes and reads.
const FILE_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error(
        "cannot read the grants file {path}: {source}; fix its permissions, or move it aside to \
         start without stored grants"
    )]
    Read { path: String, source: std::io::Error },
    #[error(
        "the grants file {path} is invalid: {reason}; fix it, or move it aside to start without \
         stored grants"
    )]
    Invalid { path: String, reason: String },
    #[error("cannot write the grants file {path}: {source}; free space on its file system or fix its permissions")]
    Write { path: String, source: std::io::Error },
    #[error("grant {0:?} not found; list the grants with `bulkhead grants list`")]
    NotFound(String),
}

/// How long a grant lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Until the hub stops, in one session.
    Session,
    /// In every session of the principal, until revoked.
    Always,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Session => "session",
            Scope::Always => "always",
        }
    }
}

/// A stored decision that allows one flow: from `source` into `target`/`tool`, for `principal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub id: String,
    pub scope: Scope,
    pub principal: String,
    /// The session a session grant applies to. Empty for an "always" grant.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub session: String,
    pub source: String,
    pub target: String,
    pub tool: String,
    /// The principal that approved the request.
    pub approver: String,
    /// The id of the approval request that made the grant.
    pub request: String,
    /// When the grant was made, in milliseconds since the Unix epoch.
    pub created_at_ms: u64,
}

/// The flow that a call is about to make, as grants match it.
#[derive(Debug, Clone, Copy)]
pub struct FlowKey<'a> {
    pub principal: &'a str,
    pub session: &'a str,
    pub source: &'a str,
    pub target: &'a str,
    pub tool: &'a str,
}

impl Grant {
    /// Reports whether the grant allows `flow`. A session grant never matches a call without a
    /// session id, because such a call is a session of its own.
    pub fn allows(&self, flow: &FlowKey<'_>) -> bool {
        let session = match self.scope {
            Scope::Always => true,
            Scope::Session => !flow.session.is_empty() && self.session == flow.session,
        };
        session
            && self.principal == flow.principal
            && self.source == flow.source
            && self.target == flow.target
            && self.tool == flow.tool
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantsFile {
    version: u32,
    grants: Vec<Grant>,
}

/// The grants of one hub.
pub struct GrantStore {
    path: PathBuf,
    grants: Mutex<Vec<Grant>>,
    /// Held while the file is rewritten, so that two changes of the "always" grants cannot
    /// interleave.
    file_lock: Mutex<()>,
}

impl GrantStore {
    /// Loads `<state>/grants.json`. A missing file means no grants. A file that cannot be read
    /// or parsed is an error, so that the hub stops rather than forget grants silently.
    pub fn load(state: &Path) -> Result<GrantStore, GrantError> {
        let path = state.join(FILE_NAME);
        let shown = path.display().to_string();
        let grants = match std::fs::read(&path) {
            Ok(bytes) => parse_file(&bytes).map_err(|reason| GrantError::Invalid { path: shown, reason })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(GrantError::Read { path: shown, source }),
        };
        Ok(GrantStore { path, grants: Mutex::new(grants), file_lock: Mutex::new(()) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the first grant that allows `flow`.
    pub fn find(&self, flow: &FlowKey<'_>) -> Option<Grant> {
        self.grants().iter().find(|grant| grant.allows(flow)).cloned()
    }

    /// Returns every grant, the "always" grants first, each group oldest first.
    pub fn list(&self) -> Vec<Grant> {
        let mut grants = self.grants().clone();
        grants.sort_by_key(|grant| (grant.scope == Scope::Session, grant.created_at_ms));
        grants
    }

    pub fn get(&self, id: &str) -> Option<Grant> {
        self.grants().iter().find(|grant| grant.id == id).cloned()
    }

    /// Returns an id that no grant has.
    pub fn new_id(&self) -> String {
        let grants = self.grants();
        loop {
            let id = short_id();
            if !grants.iter().any(|grant| grant.id == id) {
                return id;
            }
        }
    }

    /// Stores a grant. An "always" grant is written to the file first, and on a write error
    /// the grant is not stored. This blocks on the disk, so async callers run it with
    /// `spawn_blocking`.
    pub fn add(&self, grant: Grant) -> Result<(), GrantError> {
        let _file = self.file_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if grant.scope == Scope::Always {
            let mut always = self.always();
            always.push(grant.clone());
            self.write_file(always)?;
        }
        self.grants().push(grant);
        Ok(())
    }

    /// Removes the grant `id` and returns it. Removing an "always" grant rewrites the file first,
    /// and on a write error the grant stays. This blocks on the disk like [`GrantStore::add`].
    pub fn remove(&self, id: &str) -> Result<Grant, GrantError> {
        let _file = self.file_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let grant = self.get(id).ok_or_else(|| GrantError::NotFound(id.to_string()))?;
        if grant.scope == Scope::Always {
            let always = self.always().into_iter().filter(|kept| kept.id != id).collect();
            self.write_file(always)?;
        }
        self.grants().retain(|kept| kept.id != id);
        Ok(grant)
    }

    fn grants(&self) -> MutexGuard<'_, Vec<Grant>> {
        self.grants.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn always(&self) -> Vec<Grant> {
        self.grants().iter().filter(|grant| grant.scope == Scope::Always).cloned().collect()
    }

    fn write_file(&self, grants: Vec<Grant>) -> Result<(), GrantError> {
        let file = GrantsFile { version: FILE_VERSION, grants };
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(|error| GrantError::Write {
            path: self.path.display().to_string(),
            source: std::io::Error::other(error),
        })?;
        bytes.push(b'\n');
        crate::files::replace_file(&self.path, &bytes)
            .map_err(|source| GrantError::Write { path: self.path.display().to_string(), source })
    }
}

/// Parses and checks the grants file. Only "always" grants are stored, each with every field of
/// its flow set and an id of its own.
fn parse_file(bytes: &[u8]) -> Result<Vec<Grant>, String> {
    let file: GrantsFile = serde_json::from_slice(bytes).map_err(|error| error.to_string())?;
    if file.version != FILE_VERSION {
        return Err(format!("version {} is not supported; this hub reads version {FILE_VERSION}", file.version));
    }
    let mut ids = std::collections::HashSet::new();
    for (index, grant) in file.grants.iter().enumerate() {
        if grant.scope != Scope::Always {
            return Err(format!("grants[{index}] has scope {:?}, but only \"always\" grants are stored", grant.scope.as_str()));
        }
        let required = [
            ("id", &grant.id),
            ("principal", &grant.principal),
            ("source", &grant.source),
            ("target", &grant.target),
            ("tool", &grant.tool),
        ];
        if let Some((key, _)) = required.iter().find(|(_, value)| value.is_empty()) {
            return Err(format!("grants[{index}].{key} is empty"));
        }
        if !ids.insert(grant.id.as_str()) {
            return Err(format!("grants[{index}].id {:?} is used twice", grant.id));
        }
    }
    Ok(file.grants)
}

/// Returns a random id of 8 hex digits, short enough to type in `bulkhead approve`.
pub fn short_id() -> String {
    let mut id = uuid::Uuid::new_v4().simple().to_string();
    id.truncate(8);
    id
}

/// Returns the current time in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}
