//! The sessions of agents and the provenance of every result in them.

use std::collections::HashMap;

use tokio::sync::Mutex;

use super::guard::{collapse_whitespace, Provenance};

/// Sessions keyed by principal and session id, so that one principal cannot read or feed another's
/// session by guessing its id.
#[derive(Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<(String, String), Vec<Provenance>>>,
}

impl Sessions {
    /// Returns the provenance of the session's results so far. An empty session id is a session of
    /// its own for one call, so it has none.
    pub async fn provenance(&self, principal: &str, session: &str) -> Vec<Provenance> {
        if session.is_empty() {
            return Vec::new();
        }
        let key = (principal.to_string(), session.to_string());
        self.sessions
            .lock()
            .await
            .get(&key)
            .cloned()
            .unwrap_or_default()
    }

    /// Records that a result of `app` entered the session.
    // NOTE: sessions and their results stay in memory until the hub stops. There is no close RPC
    // or expiry yet.
    pub async fn add_result(
        &self,
        principal: &str,
        session: &str,
        app: &str,
        confidential: bool,
        text: &str,
    ) {
        if session.is_empty() {
            return;
        }
        let key = (principal.to_string(), session.to_string());
        let entry = Provenance {
            app: app.to_string(),
            confidential,
            text: collapse_whitespace(text),
        };
        self.sessions
            .lock()
            .await
            .entry(key)
            .or_default()
            .push(entry);
    }
}
