//! Tool arguments of the calendar app and their validation.

use chrono::{Datelike, Duration};
use schemars::JsonSchema;
use serde::Deserialize;

use super::book::{DayRange, NewEvent};
use super::when::{format_time, parse_date, parse_start};
use crate::validate::single_line;

/// Maximum length of an event title or attendee, in characters.
pub const MAX_TEXT_CHARS: usize = 200;

/// Maximum length of an event, in minutes: one week.
pub const MAX_DURATION_MINUTES: i64 = 7 * 24 * 60;

/// Length of an event when `duration_minutes` is left out.
pub const DEFAULT_DURATION_MINUTES: u32 = 60;

/// Maximum number of attendees of one event.
pub const MAX_ATTENDEES: usize = 100;

/// Arguments of `list_events`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ListEventsParams {
    /// First day to include, YYYY-MM-DD. Leave out to start at the earliest event.
    #[serde(default)]
    pub from: Option<String>,
    /// Last day to include, YYYY-MM-DD. Leave out to end at the latest event.
    #[serde(default)]
    pub to: Option<String>,
}

/// Arguments of `create_event`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateEventParams {
    /// One-line title of the event, at most 200 characters.
    pub title: String,
    /// Start time: RFC 3339 such as 2025-06-02T09:30:00+02:00, or "YYYY-MM-DD HH:MM" in UTC.
    pub start: String,
    /// Length of the event in minutes, from 1 to 10080 (one week). Defaults to 60.
    #[serde(default)]
    pub duration_minutes: Option<i64>,
    /// People to invite, as names or email addresses.
    #[serde(default)]
    pub attendees: Option<Vec<String>>,
}

/// Builds the day range of a `list_events` call, rejecting bad dates and a reversed range.
pub fn day_range(params: &ListEventsParams) -> Result<DayRange, String> {
    let from = params
        .from
        .as_deref()
        .map(|text| parse_date("from", text))
        .transpose()?;
    let to = params
        .to
        .as_deref()
        .map(|text| parse_date("to", text))
        .transpose()?;
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            return Err(format!(
                "from date {from} is after to date {to}; swap them or widen the range"
            ));
        }
    }
    Ok(DayRange { from, to })
}

/// Validates a `create_event` call and returns the event to store.
pub fn new_event(params: CreateEventParams) -> Result<NewEvent, String> {
    let title = params.title.trim().to_owned();
    single_line("title", &title, MAX_TEXT_CHARS)?;
    let start = parse_start(&params.start)?;
    let duration_minutes = duration(params.duration_minutes)?;
    // RFC 3339 has four-digit years, so a later end could not be stored and read back.
    let end = start
        .checked_add_signed(Duration::minutes(i64::from(duration_minutes)))
        .filter(|end| end.year() <= 9999)
        .ok_or_else(|| {
            let start = format_time(&start);
            format!("event starting {start} would end after the year 9999")
        })?;
    let attendees = attendees(params.attendees.unwrap_or_default())?;
    Ok(NewEvent {
        title,
        start,
        end,
        duration_minutes,
        attendees,
    })
}

fn duration(minutes: Option<i64>) -> Result<u32, String> {
    let Some(minutes) = minutes else {
        return Ok(DEFAULT_DURATION_MINUTES);
    };
    if !(1..=MAX_DURATION_MINUTES).contains(&minutes) {
        return Err(format!(
            "invalid duration_minutes {minutes}: expected 1 to {MAX_DURATION_MINUTES}"
        ));
    }
    u32::try_from(minutes).map_err(|_| format!("invalid duration_minutes {minutes}"))
}

fn attendees(names: Vec<String>) -> Result<Vec<String>, String> {
    if names.len() > MAX_ATTENDEES {
        return Err(format!(
            "{} attendees given; the maximum is {MAX_ATTENDEES}",
            names.len()
        ));
    }
    let names: Vec<String> = names.iter().map(|name| name.trim().to_owned()).collect();
    for name in &names {
        single_line("attendee", name, MAX_TEXT_CHARS)?;
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(start: &str, duration_minutes: Option<i64>) -> CreateEventParams {
        CreateEventParams {
            title: " Dentist ".to_owned(),
            start: start.to_owned(),
            duration_minutes,
            attendees: Some(vec![" alice@example.org ".to_owned()]),
        }
    }

    #[test]
    fn new_event_applies_defaults() {
        let event = new_event(params("2025-06-02 09:30", None)).expect("valid event");
        assert_eq!(event.title, "Dentist");
        assert_eq!(event.duration_minutes, 60);
        assert_eq!(format_time(&event.end), "2025-06-02T10:30:00Z");
        assert_eq!(event.attendees, vec!["alice@example.org"]);
    }

    #[test]
    fn new_event_rejects_bad_duration() {
        for minutes in [0, -5, MAX_DURATION_MINUTES + 1] {
            let err = new_event(params("2025-06-02 09:30", Some(minutes))).expect_err("bad");
            assert!(err.starts_with("invalid duration_minutes"), "{err}");
        }
    }

    #[test]
    fn new_event_rejects_end_past_9999() {
        let err = new_event(params("9999-12-31T23:30:00Z", Some(60))).expect_err("overflow");
        assert!(err.contains("year 9999"), "{err}");
    }

    #[test]
    fn new_event_rejects_blank_attendee() {
        let mut request = params("2025-06-02 09:30", None);
        request.attendees = Some(vec!["alice".to_owned(), " ".to_owned()]);
        let err = new_event(request).expect_err("blank attendee");
        assert!(err.starts_with("attendee is empty"), "{err}");
    }

    #[test]
    fn day_range_rejects_reversed_bounds() {
        let request = ListEventsParams {
            from: Some("2025-06-05".to_owned()),
            to: Some("2025-06-01".to_owned()),
        };
        let err = day_range(&request).expect_err("reversed");
        assert!(err.contains("is after"), "{err}");
    }

    #[test]
    fn day_range_rejects_bad_date() {
        let request = ListEventsParams {
            from: None,
            to: Some("June 1".to_owned()),
        };
        let err = day_range(&request).expect_err("bad date");
        assert!(err.starts_with("invalid to date"), "{err}");
    }
}
