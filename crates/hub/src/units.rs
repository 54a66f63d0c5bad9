//! Byte sizes and durations as they are written in manifests and in hub.toml.
//!
//! Sizes are whole numbers with an optional unit. The IEC units (KiB, MiB, ...) and the bare
//! letters K, M, G and T are powers of 1024, as in systemd. KB, MB, GB and TB are powers of 1000.
//! Durations use humantime's syntax ("250ms", "30s", "5m", "1h 30m").

use std::time::Duration;

use thiserror::Error;

/// The units accepted by [`parse_size`], with their multipliers.
const SIZE_UNITS: [(&str, u64); 13] = [
    ("B", 1),
    ("K", 1 << 10),
    ("KiB", 1 << 10),
    ("KB", 1_000),
    ("M", 1 << 20),
    ("MiB", 1 << 20),
    ("MB", 1_000_000),
    ("G", 1 << 30),
    ("GiB", 1 << 30),
    ("GB", 1_000_000_000),
    ("T", 1 << 40),
    ("TiB", 1 << 40),
    ("TB", 1_000_000_000_000),
];

/// The binary units that [`format_size`] writes, largest first.
const FORMAT_UNITS: [(&str, u64); 5] = [
    ("EiB", 1 << 60),
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
];

/// Errors from parsing a size or a duration.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum UnitError {
    #[error(
        "invalid size \"{0}\": use a whole number with B, K, KB, KiB, M, MB, MiB, G, GB, GiB, \
         T, TB or TiB, such as \"256MiB\""
    )]
    InvalidSize(String),

    #[error("size \"{0}\" is too large: the maximum is {max} bytes", max = u64::MAX)]
    SizeOverflow(String),

    #[error("invalid duration \"{value}\": {reason}; use a number with a unit, such as \"250ms\", \"30s\" or \"5m\"")]
    InvalidDuration { value: String, reason: String },
}

/// Parses a byte size such as "512MiB", "64K" or "1000000": a whole number and an optional unit.
///
/// Whitespace around the value and between the number and the unit is ignored. Units are
/// case-sensitive, so "mib" is rejected rather than guessed.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(digits_end);
    if digits.is_empty() {
        return Err(UnitError::InvalidSize(text.to_owned()));
    }

    let multiplier = match unit.trim_start() {
        "" => 1,
        unit => SIZE_UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, multiplier)| *multiplier)
            .ok_or_else(|| UnitError::InvalidSize(text.to_owned()))?,
    };

    // Only digits remain, so the sole way for the parse to fail is a value above u64::MAX.
    let number: u64 = digits
        .parse()
        .map_err(|_| UnitError::SizeOverflow(text.to_owned()))?;
    number
        .checked_mul(multiplier)
        .ok_or_else(|| UnitError::SizeOverflow(text.to_owned()))
}

/// Parses a duration such as "250ms", "30s" or "1h 30m" with humantime.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    humantime::parse_duration(text.trim()).map_err(|error| UnitError::InvalidDuration {
        value: text.to_owned(),
        reason: error.to_string(),
    })
}

/// Formats a byte count for messages, in the largest binary unit that divides it exactly.
///
/// The output parses back to the same number with [`parse_size`], except that the exbibyte
/// values it writes as "EiB" are above what that parser accepts as a unit.
pub fn format_size(bytes: u64) -> String {
    if bytes == 0 {
        return "0B".to_owned();
    }
    for (name, multiplier) in FORMAT_UNITS {
        if bytes.is_multiple_of(multiplier) {
            return format!("{}{name}", bytes / multiplier);
        }
    }
    format!("{bytes}B")
}

/// Formats a duration for messages, such as "30s" or "1h 30m".
pub fn format_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_size_plain_bytes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("42B"), Ok(42));
    }

    #[test]
    fn parse_size_every_unit() {
        let cases = [
            ("1K", 1024),
            ("1KiB", 1024),
            ("1KB", 1000),
            ("2M", 2 << 20),
            ("2MiB", 2 << 20),
            ("2MB", 2_000_000),
            ("3G", 3 << 30),
            ("3GiB", 3 << 30),
            ("3GB", 3_000_000_000),
            ("1T", 1 << 40),
            ("1TiB", 1 << 40),
            ("1TB", 1_000_000_000_000),
            ("256MiB", 256 << 20),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_size(text), Ok(expected), "parsing {text:?}");
        }
    }

    #[test]
    fn parse_size_allows_whitespace() {
        assert_eq!(parse_size(" 512MiB "), Ok(512 << 20));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
    }

    #[test]
    fn parse_size_rejects_bad_input() {
        for text in [
            "",
            " ",
            "MiB",
            "12 parsecs",
            "1.5GiB",
            "-1",
            "+1",
            "1mib",
            "1kb",
            "1 M B",
            "0x10",
            "1Ki",
            "1 2",
        ] {
            assert_eq!(
                parse_size(text),
                Err(UnitError::InvalidSize(text.to_owned())),
                "parsing {text:?}"
            );
        }
    }

    #[test]
    fn parse_size_overflow() {
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(
            parse_size("18446744073709551616"),
            Err(UnitError::SizeOverflow("18446744073709551616".to_owned()))
        );
        assert_eq!(parse_size("16777215TiB"), Ok(16_777_215 << 40));
        assert_eq!(
            parse_size("16777216TiB"),
            Err(UnitError::SizeOverflow("16777216TiB".to_owned()))
        );
        assert_eq!(
            parse_size("99999999999999999999999K"),
            Err(UnitError::SizeOverflow(
                "99999999999999999999999K".to_owned()
            ))
        );
    }

    #[test]
    fn invalid_size_message_names_units() {
        let message = parse_size("12 parsecs").unwrap_err().to_string();
        assert_eq!(
            message,
            "invalid size \"12 parsecs\": use a whole number with B, K, KB, KiB, M, MB, MiB, \
             G, GB, GiB, T, TB or TiB, such as \"256MiB\""
        );
    }

    #[test]
    fn parse_duration_forms() {
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration(" 1h 30m "), Ok(Duration::from_secs(5400)));
    }

    #[test]
    fn parse_duration_rejects_bad_input() {
        for text in ["", "30", "-1s", "5 parsecs", "s"] {
            let error = parse_duration(text).unwrap_err();
            assert!(
                matches!(&error, UnitError::InvalidDuration { value, .. } if value == text),
                "parsing {text:?} gave {error:?}"
            );
        }
    }

    #[test]
    fn parse_duration_overflow() {
        assert!(parse_duration("99999999999999999999999s").is_err());
    }

    #[test]
    fn format_size_picks_exact_unit() {
        assert_eq!(format_size(0), "0B");
        assert_eq!(format_size(1000), "1000B");
        assert_eq!(format_size(1536), "1536B");
        assert_eq!(format_size(2048), "2KiB");
        assert_eq!(format_size(8 << 20), "8MiB");
        assert_eq!(format_size(512 << 20), "512MiB");
        assert_eq!(format_size(1 << 40), "1TiB");
        assert_eq!(format_size(u64::MAX), "18446744073709551615B");
        assert_eq!(format_size(1 << 60), "1EiB");
    }

    #[test]
    fn format_size_round_trips() {
        for bytes in [1, 1000, 1024, 3 << 30, 5 << 40, (1 << 40) + 1] {
            assert_eq!(parse_size(&format_size(bytes)), Ok(bytes));
        }
    }
}
