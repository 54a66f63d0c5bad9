//! Human-readable byte sizes, durations and counts.

use std::time::Duration;

const BINARY_UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/// Formats a byte count in binary units with one decimal, such as "512 B" or "1.5 MiB".
pub fn format_bytes(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Precision loss above 2^53 bytes does not show at one decimal.
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    // Rounding to one decimal turns 1023.95 into "1024.0", so move up a unit before that.
    while value >= 1023.95 && unit + 1 < BINARY_UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", BINARY_UNITS[unit])
}

/// Formats an uptime with its two largest units, such as "42s", "5m 12s", "2h 3m" or "3d 4h".
pub fn format_uptime(seconds: u64) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;

    let (major, major_unit, minor, minor_unit) = if seconds >= DAY {
        (seconds / DAY, "d", seconds % DAY / HOUR, "h")
    } else if seconds >= HOUR {
        (seconds / HOUR, "h", seconds % HOUR / MINUTE, "m")
    } else if seconds >= MINUTE {
        (seconds / MINUTE, "m", seconds % MINUTE, "s")
    } else {
        return format!("{seconds}s");
    };

    if minor == 0 {
        format!("{major}{major_unit}")
    } else {
        format!("{major}{major_unit} {minor}{minor_unit}")
    }
}

/// Formats a duration for messages, such as "60s" or "250ms".
pub fn format_timeout(timeout: Duration) -> String {
    humantime::format_duration(timeout).to_string()
}

/// Formats a count with its noun, adding "s" unless the count is one: "1 app", "3 apps".
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_below_one_kibibyte() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1), "1 B");
        assert_eq!(format_bytes(1023), "1023 B");
    }

    #[test]
    fn bytes_in_binary_units() {
        assert_eq!(format_bytes(1024), "1.0 KiB");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(10 * 1024 * 1024), "10.0 MiB");
        assert_eq!(
            format_bytes(256 * 1024 * 1024 + 1024 * 1024 / 2),
            "256.5 MiB"
        );
        assert_eq!(format_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn bytes_round_up_to_next_unit() {
        assert_eq!(format_bytes(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(format_bytes(1024 * 1024 - 100), "1023.9 KiB");
    }

    #[test]
    fn bytes_at_maximum() {
        assert_eq!(format_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn uptime_two_largest_units() {
        assert_eq!(format_uptime(0), "0s");
        assert_eq!(format_uptime(42), "42s");
        assert_eq!(format_uptime(60), "1m");
        assert_eq!(format_uptime(312), "5m 12s");
        assert_eq!(format_uptime(2 * 3600 + 3 * 60 + 59), "2h 3m");
        assert_eq!(format_uptime(3 * 86400), "3d");
        assert_eq!(format_uptime(3 * 86400 + 4 * 3600 + 5), "3d 4h");
    }

    #[test]
    fn timeout_formats() {
        assert_eq!(format_timeout(Duration::from_secs(60)), "1m");
        assert_eq!(format_timeout(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn count_pluralizes() {
        assert_eq!(count(0, "app"), "0 apps");
        assert_eq!(count(1, "app"), "1 app");
        assert_eq!(count(2, "spoke"), "2 spokes");
    }
}
