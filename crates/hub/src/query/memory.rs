//! The query history of each session: earlier queries, their steps and the steps' outputs.
//!
//! The planner's prompt contains the queries and the steps' apps, never the outputs. A later query may use an
//! output by reference (qN.ID), and the hub moves it into an app only through the flow check.

use std::collections::HashMap;

use tokio::sync::Mutex;

/// The queries kept per session. Older ones are dropped first.
pub const MAX_QUERIES_PER_SESSION: usize = 50;

/// One step of an earlier query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    pub id: String,
    pub app: String,
    /// The tool, or "(instruction)".
    pub action: String,
    pub ok: bool,
    pub output: String,
}

/// One earlier query of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRecord {
    /// The query's number in its session, from 1.
    pub number: u32,
    pub text: String,
    pub steps: Vec<StepRecord>,
}

impl QueryRecord {
    pub fn step(&self, id: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|step| step.id == id)
    }
}

/// Histories keyed by principal and session id, like the flow guard's sessions, so one principal
/// cannot read another's history.
#[derive(Default)]
pub struct Memory {
    sessions: Mutex<HashMap<(String, String), Vec<QueryRecord>>>,
}

impl Memory {
    /// Returns the session's history, oldest first, and the number the next query gets.
    // NOTE: histories stay in memory until the hub stops, like the flow guard's sessions.
    pub async fn history(&self, principal: &str, session: &str) -> (Vec<QueryRecord>, u32) {
        let sessions = self.sessions.lock().await;
        let history = sessions
            .get(&(principal.to_string(), session.to_string()))
            .cloned()
            .unwrap_or_default();
        let next = history.last().map_or(1, |last| last.number + 1);
        (history, next)
    }

    /// Appends a finished query to the session's history.
    pub async fn remember(&self, principal: &str, session: &str, record: QueryRecord) {
        let mut sessions = self.sessions.lock().await;
        let history = sessions
            .entry((principal.to_string(), session.to_string()))
            .or_default();
        history.push(record);
        if history.len() > MAX_QUERIES_PER_SESSION {
            let excess = history.len() - MAX_QUERIES_PER_SESSION;
            history.drain(..excess);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(number: u32) -> QueryRecord {
        QueryRecord {
            number,
            text: format!("query {number}"),
            steps: Vec::new(),
        }
    }

    #[tokio::test]
    async fn histories_are_per_principal_and_numbered() {
        let memory = Memory::default();
        memory.remember("uid:0", "s", record(1)).await;
        let (history, next) = memory.history("uid:0", "s").await;
        assert_eq!(history.len(), 1);
        assert_eq!(next, 2);
        let (other, next) = memory.history("uid:1000", "s").await;
        assert!(other.is_empty());
        assert_eq!(next, 1);
    }

    #[tokio::test]
    async fn oldest_queries_are_dropped() {
        let memory = Memory::default();
        let max = u32::try_from(MAX_QUERIES_PER_SESSION).expect("the limit fits in u32");
        for number in 1..=(max + 2) {
            memory.remember("uid:0", "s", record(number)).await;
        }
        let (history, next) = memory.history("uid:0", "s").await;
        assert_eq!(history.len(), MAX_QUERIES_PER_SESSION);
        assert_eq!(history[0].number, 3);
        assert_eq!(next, max + 3);
    }
}
