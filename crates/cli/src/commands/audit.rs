//! `bulkhead audit verify|tail|export`: read the hub's audit log from its state directory.
//!
//! These commands read the file directly, so they work while the hub is stopped, and they need
//! read access to the state directory, which normally means root.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

use crate::args::{ExportArgs, TailArgs};
use crate::output::{terminal_safe, Output};

/// How often `tail -f` checks the file for new records.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Serialize)]
struct VerifyJson {
    ok: bool,
    records: u64,
    head: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_record: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

fn log_path(state: &Path) -> PathBuf {
    state.join(bulkhead_audit::FILE_NAME)
}

fn read_log(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| {
        format!(
            "cannot read the audit log {}; pass the hub's state directory with --state",
            path.display()
        )
    })
}

/// Verifies the chain. A failed check exits with 1 and names the first bad record.
pub fn verify(output: &Output, state: &Path) -> Result<ExitCode> {
    let path = log_path(state);
    let bytes = read_log(&path)?;
    match bulkhead_audit::verify(&bytes) {
        Ok(report) => {
            if output.json {
                let json = VerifyJson {
                    ok: true,
                    records: report.records,
                    head: report.head,
                    failed_record: None,
                    reason: None,
                };
                output.print_json(&json)?;
            } else {
                output.print_text(&format!(
                    "{}: {} records verified, head {}",
                    path.display(),
                    report.records,
                    report.head
                ))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            if output.json {
                let json = VerifyJson {
                    ok: false,
                    records: error.record.saturating_sub(1),
                    head: String::new(),
                    failed_record: Some(error.record),
                    reason: Some(error.reason.clone()),
                };
                output.print_json(&json)?;
            }
            anyhow::bail!(
                "{}: verification failed: {error}; keep the file as evidence",
                path.display()
            )
        }
    }
}

/// Prints the last records, then follows the file if asked.
pub async fn tail(output: &Output, args: &TailArgs) -> Result<ExitCode> {
    let path = log_path(&args.file.state);
    let bytes = read_log(&path)?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines[lines.len().saturating_sub(args.lines)..] {
        print_record(output, line)?;
    }
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut file =
        std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut offset = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    let mut pending = String::new();
    loop {
        tokio::time::sleep(FOLLOW_INTERVAL).await;
        file.seek(SeekFrom::Start(offset))?;
        let mut chunk = Vec::new();
        file.read_to_end(&mut chunk)?;
        offset += u64::try_from(chunk.len()).unwrap_or(u64::MAX);
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            print_record(output, line.trim_end())?;
        }
    }
}

/// Writes the log as JSON Lines, one record per line, after warning if its chain is broken.
pub fn export(output: &Output, args: &ExportArgs) -> Result<ExitCode> {
    let path = log_path(&args.file.state);
    let bytes = read_log(&path)?;
    if let Err(error) = bulkhead_audit::verify(&bytes) {
        output.warn(&format!(
            "{}: the exported log fails verification: {error}",
            path.display()
        ));
    }
    match &args.out {
        Some(out) => std::fs::write(out, &bytes)
            .with_context(|| format!("cannot write {}", out.display()))?,
        None => std::io::stdout().lock().write_all(&bytes)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints one record: the line itself with --json, otherwise "SEQ TIME KIND key=value ...".
fn print_record(output: &Output, line: &str) -> Result<()> {
    if output.json {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}")?;
        stdout.flush()?;
        return Ok(());
    }
    output.print_text(&terminal_safe(&record_text(line)))?;
    Ok(())
}

fn record_text(line: &str) -> String {
    let Ok(Value::Object(record)) = serde_json::from_str::<Value>(line) else {
        return format!("(unreadable record) {line}");
    };
    let mut text = format!(
        "{:>6} {} {}",
        record
            .get("seq")
            .map(ToString::to_string)
            .unwrap_or_default(),
        record
            .get("time")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        record
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    );
    if let Some(Value::Object(fields)) = record.get("fields") {
        for (key, value) in fields {
            match value {
                Value::String(value) => text.push_str(&format!(" {key}={value}")),
                other => text.push_str(&format!(" {key}={other}")),
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::record_text;

    #[test]
    fn record_text_lists_fields() {
        let line = r#"{"fields":{"app":"notes","n":2},"hash":"h","kind":"call","prev":"p","seq":7,"time":"t"}"#;
        assert_eq!(record_text(line), "     7 t call app=notes n=2");
    }
}
