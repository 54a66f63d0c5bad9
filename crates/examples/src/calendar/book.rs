//! The event store: all events in one JSON document, `events.json` in the state directory,
//! replaced whole on every change.

use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, NaiveDate};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::when::rfc3339;
use crate::store::{check_state_dir, read_json, write_json_atomic, StoreError};

/// File name of the event document inside the state directory.
pub const EVENTS_FILE: &str = "events.json";

/// One stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// Sequential id, starting at 1.
    pub id: u64,
    /// One-line title.
    pub title: String,
    /// Start time, RFC 3339 with the offset it was created with.
    #[serde(with = "rfc3339")]
    #[schemars(with = "String")]
    pub start: DateTime<FixedOffset>,
    /// End time: start plus the duration, in the same offset.
    #[serde(with = "rfc3339")]
    #[schemars(with = "String")]
    pub end: DateTime<FixedOffset>,
    /// Length of the event in minutes.
    pub duration_minutes: u32,
    /// People invited, as given (names or email addresses).
    pub attendees: Vec<String>,
}

/// A validated request to create an event.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub title: String,
    pub start: DateTime<FixedOffset>,
    pub end: DateTime<FixedOffset>,
    pub duration_minutes: u32,
    pub attendees: Vec<String>,
}

/// Inclusive range of days. A missing bound leaves that side open.
#[derive(Debug, Clone, Copy, Default)]
pub struct DayRange {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl DayRange {
    /// Returns whether the day of `time`, in its own offset, lies in the range.
    pub fn contains(&self, time: &DateTime<FixedOffset>) -> bool {
        let day = time.date_naive();
        self.from.is_none_or(|from| day >= from) && self.to.is_none_or(|to| day <= to)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct EventsDocument {
    events: Vec<Event>,
}

/// All events, kept in memory and written to disk on each change.
#[derive(Debug)]
pub struct Calendar {
    path: PathBuf,
    events: Vec<Event>,
}

impl Calendar {
    /// Opens the calendar in `state_dir`. A missing file is an empty calendar.
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        check_state_dir(state_dir)?;
        let path = state_dir.join(EVENTS_FILE);
        let document: EventsDocument = read_json(&path)?.unwrap_or_default();
        Ok(Self {
            path,
            events: document.events,
        })
    }

    /// Number of stored events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Returns whether the calendar has no events.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Stores a new event with the next id and returns it once it is on disk.
    pub fn create(&mut self, new: NewEvent) -> Result<&Event, StoreError> {
        let event = Event {
            id: self.next_id(),
            title: new.title,
            start: new.start,
            end: new.end,
            duration_minutes: new.duration_minutes,
            attendees: new.attendees,
        };
        let mut events = self.events.clone();
        events.push(event);
        let document = EventsDocument { events };
        write_json_atomic(&self.path, &document)?;

        self.events = document.events;
        Ok(&self.events[self.events.len() - 1])
    }

    /// Returns the events whose start day lies in `range`, sorted by start time and then id.
    pub fn list(&self, range: DayRange) -> Vec<&Event> {
        let mut events: Vec<&Event> = self
            .events
            .iter()
            .filter(|event| range.contains(&event.start))
            .collect();
        events.sort_by_key(|event| (event.start, event.id));
        events
    }

    fn next_id(&self) -> u64 {
        self.events.iter().map(|event| event.id).max().unwrap_or(0) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::when::{format_time, parse_start};

    fn new_event(title: &str, start: &str) -> NewEvent {
        let start = parse_start(start).expect("valid test start");
        NewEvent {
            title: title.to_owned(),
            start,
            end: start + chrono::Duration::minutes(30),
            duration_minutes: 30,
            attendees: Vec::new(),
        }
    }

    fn titles(events: &[&Event]) -> Vec<String> {
        events.iter().map(|event| event.title.clone()).collect()
    }

    #[test]
    fn create_persists_and_sorts() {
        let dir = tempfile::tempdir().expect("create temp dir");
        let mut calendar = Calendar::open(dir.path()).expect("open");
        assert!(calendar.is_empty());
        assert!(!dir.path().join(EVENTS_FILE).exists());

        let late = calendar
            .create(new_event("late", "2025-06-03 10:00"))
            .expect("create late");
        assert_eq!(late.id, 1);
        assert_eq!(format_time(&late.end), "2025-06-03T10:30:00Z");
        calendar
            .create(new_event("early", "2025-06-02T09:00:00+02:00"))
            .expect("create early");
        drop(calendar);

        let calendar = Calendar::open(dir.path()).expect("reopen");
        assert_eq!(calendar.len(), 2);
        let all = calendar.list(DayRange::default());
        assert_eq!(titles(&all), vec!["early", "late"]);
        assert_eq!(format_time(&all[0].start), "2025-06-02T09:00:00+02:00");
    }

    #[test]
    fn list_filters_by_local_day() {
        let dir = tempfile::tempdir().expect("create temp dir");
        let mut calendar = Calendar::open(dir.path()).expect("open");
        // 23:30 at -05:00 is the next day in UTC, but the event is on June 1 as written.
        calendar
            .create(new_event("evening", "2025-06-01T23:30:00-05:00"))
            .expect("create");
        calendar
            .create(new_event("next", "2025-06-02 08:00"))
            .expect("create");

        let day = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok();
        let june_1 = DayRange {
            from: day("2025-06-01"),
            to: day("2025-06-01"),
        };
        assert_eq!(titles(&calendar.list(june_1)), vec!["evening"]);
        let from_june_2 = DayRange {
            from: day("2025-06-02"),
            to: None,
        };
        assert_eq!(titles(&calendar.list(from_june_2)), vec!["next"]);
    }

    #[test]
    fn open_rejects_corrupt_file() {
        let dir = tempfile::tempdir().expect("create temp dir");
        std::fs::write(dir.path().join(EVENTS_FILE), "{\"events\": [").expect("write");
        let err = Calendar::open(dir.path()).expect_err("corrupt file must fail");
        assert!(err.to_string().contains("invalid JSON document"), "{err}");
    }
}
