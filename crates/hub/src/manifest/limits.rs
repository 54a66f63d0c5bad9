//! Validation of the `[limits]` table: memory, process count, CPU share and call timeout.

use std::time::Duration;

use super::raw::RawLimits;
use super::validate::{check_range, invalid, show_duration, Invalid};
use super::LimitsConfig;
use crate::units::{format_size, parse_duration, parse_size};

/// Memory limit when the manifest sets none.
pub const DEFAULT_MEMORY_BYTES: u64 = 512 << 20;
/// Process and thread limit when the manifest sets none.
pub const DEFAULT_PIDS: u64 = 128;
/// CPU share in thousandths of a CPU when the manifest sets none.
pub const DEFAULT_CPU_MILLIS: u32 = 1000;
/// Time a tool call may take when the manifest sets none.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Below 8 MiB a runtime such as Python or Node cannot start.
const MIN_MEMORY_BYTES: u64 = 8 << 20;
const MAX_MEMORY_BYTES: u64 = 1 << 40;
const MAX_PIDS: i64 = 65_536;
const MAX_CPUS: f64 = 64.0;
const MIN_CALL_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_CALL_TIMEOUT: Duration = Duration::from_secs(3600);

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            memory_bytes: DEFAULT_MEMORY_BYTES,
            pids: DEFAULT_PIDS,
            cpu_millis: DEFAULT_CPU_MILLIS,
            call_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }
}

pub(crate) fn check_limits(raw: RawLimits) -> Result<LimitsConfig, Invalid> {
    let defaults = LimitsConfig::default();
    let memory_bytes = match raw.memory {
        Some(text) => check_memory(&text)?,
        None => defaults.memory_bytes,
    };
    let pids = match raw.pids {
        Some(pids) => check_pids(pids)?,
        None => defaults.pids,
    };
    let cpu_millis = match raw.cpu {
        Some(cpu) => check_cpu(cpu)?,
        None => defaults.cpu_millis,
    };
    let call_timeout = match raw.call_timeout {
        Some(text) => check_call_timeout(&text)?,
        None => defaults.call_timeout,
    };
    Ok(LimitsConfig {
        memory_bytes,
        pids,
        cpu_millis,
        call_timeout,
    })
}

fn check_memory(text: &str) -> Result<u64, Invalid> {
    const KEY: &str = "limits.memory";
    let bytes = parse_size(text).map_err(|error| invalid(KEY, error.to_string()))?;
    check_range(KEY, bytes, MIN_MEMORY_BYTES, MAX_MEMORY_BYTES, format_size)
}

fn check_pids(pids: i64) -> Result<u64, Invalid> {
    let pids = check_range("limits.pids", pids, 1, MAX_PIDS, |n| n.to_string())?;
    // The range check leaves only positive values, whose absolute value is the value itself.
    Ok(pids.unsigned_abs())
}

fn check_cpu(cpu: f64) -> Result<u32, Invalid> {
    const KEY: &str = "limits.cpu";
    if !cpu.is_finite() || cpu <= 0.0 || cpu > MAX_CPUS {
        return Err(invalid(
            KEY,
            format!(
                "{cpu} is out of range; use a number of CPUs above 0 and at most {MAX_CPUS}, such \
                 as 0.5"
            ),
        ));
    }
    let millis = (cpu * 1000.0).round();
    if millis < 1.0 {
        return Err(invalid(
            KEY,
            format!("{cpu} is below the smallest share of 0.001 CPUs"),
        ));
    }
    // The checks above bound millis to 1..=64000, so the cast neither truncates nor wraps.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let millis = millis as u32;
    Ok(millis)
}

fn check_call_timeout(text: &str) -> Result<Duration, Invalid> {
    const KEY: &str = "limits.call_timeout";
    let timeout = parse_duration(text).map_err(|error| invalid(KEY, error.to_string()))?;
    check_range(
        KEY,
        timeout,
        MIN_CALL_TIMEOUT,
        MAX_CALL_TIMEOUT,
        show_duration,
    )
}
