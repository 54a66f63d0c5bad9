//! The note store: every note is one line of `notes.jsonl` in the state directory.

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::store::{check_state_dir, JsonLinesFile, StoreError};
use crate::validate::contains_ignore_case;

/// File name of the note log inside the state directory.
pub const NOTES_FILE: &str = "notes.jsonl";

/// One stored note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Note {
    /// Sequential id, starting at 1.
    pub id: u64,
    /// One-line title.
    pub title: String,
    /// Free text.
    pub body: String,
    /// Creation time, RFC 3339 in UTC.
    pub created_at: String,
}

/// All notes, kept in memory and appended to the log as they are added.
#[derive(Debug)]
pub struct NoteBook {
    log: JsonLinesFile,
    notes: Vec<Note>,
}

impl NoteBook {
    /// Opens the note log in `state_dir`, creating it when missing.
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        check_state_dir(state_dir)?;
        let (log, notes) = JsonLinesFile::open(&state_dir.join(NOTES_FILE))?;
        Ok(Self { log, notes })
    }

    /// Stores a new note with the next id and returns it once it is on disk.
    pub fn add(
        &mut self,
        title: String,
        body: String,
        created_at: DateTime<Utc>,
    ) -> Result<&Note, StoreError> {
        let note = Note {
            id: self.next_id(),
            title,
            body,
            created_at: created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        };
        self.log.append(&note)?;
        self.notes.push(note);
        Ok(&self.notes[self.notes.len() - 1])
    }

    /// Returns every note in the order it was added.
    pub fn notes(&self) -> &[Note] {
        &self.notes
    }

    /// Returns the notes whose title or body contains `query`, ignoring case. An empty query
    /// matches every note.
    pub fn search(&self, query: &str) -> Vec<&Note> {
        let needle = query.to_lowercase();
        self.notes
            .iter()
            .filter(|note| {
                contains_ignore_case(&note.title, &needle)
                    || contains_ignore_case(&note.body, &needle)
            })
            .collect()
    }

    fn next_id(&self) -> u64 {
        self.notes.iter().map(|note| note.id).max().unwrap_or(0) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 5, 1, hour, 0, 0)
            .single()
            .expect("valid test time")
    }

    #[test]
    fn ids_continue_after_reopen() {
        let dir = tempfile::tempdir().expect("create temp dir");
        let mut book = NoteBook::open(dir.path()).expect("open");
        let first = book.add("a".into(), "x".into(), at(9)).expect("add a");
        assert_eq!(first.id, 1);
        assert_eq!(first.created_at, "2025-05-01T09:00:00Z");
        book.add("b".into(), "y".into(), at(10)).expect("add b");
        drop(book);

        let mut book = NoteBook::open(dir.path()).expect("reopen");
        assert_eq!(book.notes().len(), 2);
        let third = book.add("c".into(), "z".into(), at(11)).expect("add c");
        assert_eq!(third.id, 3);
    }

    #[test]
    fn search_ignores_case() {
        let dir = tempfile::tempdir().expect("create temp dir");
        let mut book = NoteBook::open(dir.path()).expect("open");
        book.add("Groceries".into(), "Milk, EGGS".into(), at(9))
            .expect("add");
        book.add("Trip".into(), "Book the train".into(), at(10))
            .expect("add");

        let ids = |query: &str| -> Vec<u64> { book.search(query).iter().map(|n| n.id).collect() };
        assert_eq!(ids("eggs"), vec![1]);
        assert_eq!(ids("TRAIN"), vec![2]);
        assert_eq!(ids("groc"), vec![1]);
        assert_eq!(ids("missing"), Vec::<u64>::new());
        assert_eq!(ids(""), vec![1, 2]);
    }
}
