//! Parsing of the dates and times that calendar tools accept.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, SecondsFormat};

/// Accepted forms of an event start, for error messages and tool descriptions.
pub const START_FORMATS: &str =
    "RFC 3339 such as 2025-06-02T09:30:00+02:00, or \"YYYY-MM-DD HH:MM\" in UTC";

/// Parses an event start given as RFC 3339 (keeping its offset) or as "YYYY-MM-DD HH:MM",
/// which is taken as UTC because the sandbox has no time zone of its own.
pub fn parse_start(input: &str) -> Result<DateTime<FixedOffset>, String> {
    let input = input.trim();
    if let Ok(start) = DateTime::parse_from_rfc3339(input) {
        return Ok(start);
    }
    NaiveDateTime::parse_from_str(input, "%Y-%m-%d %H:%M")
        .map(|naive| naive.and_utc().fixed_offset())
        .map_err(|_| format!("invalid start {input:?}: expected {START_FORMATS}"))
}

/// Parses a calendar day given as YYYY-MM-DD.
pub fn parse_date(field: &str, input: &str) -> Result<NaiveDate, String> {
    let input = input.trim();
    NaiveDate::parse_from_str(input, "%Y-%m-%d").map_err(|_| {
        format!("invalid {field} date {input:?}: expected YYYY-MM-DD, e.g. 2025-06-02")
    })
}

/// Formats `time` as RFC 3339 with whole seconds, writing `Z` for UTC.
pub fn format_time(time: &DateTime<FixedOffset>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Serde adapter that stores a `DateTime<FixedOffset>` as an RFC 3339 string.
pub mod rfc3339 {
    use chrono::{DateTime, FixedOffset};
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        time: &DateTime<FixedOffset>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_time(time))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<FixedOffset>, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map_err(|err| D::Error::custom(format!("invalid RFC 3339 time {text:?}: {err}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_keeps_rfc3339_offset() {
        let start = parse_start("2025-06-02T09:30:00+02:00").expect("valid start");
        assert_eq!(format_time(&start), "2025-06-02T09:30:00+02:00");
    }

    #[test]
    fn start_without_offset_is_utc() {
        let start = parse_start("2025-06-02 09:30").expect("valid start");
        assert_eq!(format_time(&start), "2025-06-02T09:30:00Z");
    }

    #[test]
    fn start_rejects_bad_input() {
        for input in [
            "",
            "tomorrow",
            "2025-13-01 10:00",
            "2025-02-30 10:00",
            "2025-06-02 25:00",
            "2025-06-02",
            "2025-06-02T09:30:00",
        ] {
            let err = parse_start(input).expect_err(input);
            assert!(err.starts_with("invalid start"), "{input}: {err}");
        }
    }

    #[test]
    fn date_parses_and_rejects() {
        let date = parse_date("from", "2025-06-02").expect("valid date");
        assert_eq!(date.to_string(), "2025-06-02");
        let err = parse_date("from", "2025-06-31").expect_err("June has 30 days");
        assert!(err.contains("invalid from date"), "{err}");
    }
}
