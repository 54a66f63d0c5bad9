//! `bulkhead logs APP [-f]`.

use std::process::ExitCode;

use anyhow::Result;
use bulkhead_proto::v1::LogLine;
use serde::Serialize;

use super::connect;
use crate::args::{GlobalOptions, LogsArgs};
use crate::output::Output;

/// A line as `--json` prints it: one JSON object a line (JSON Lines), so that `-f` output can be
/// read while it streams.
#[derive(Debug, Serialize)]
struct LogLineJson<'a> {
    text: &'a str,
    received_at_ms: u64,
    skipped_before: u64,
}

pub async fn run(global: &GlobalOptions, output: &Output, args: LogsArgs) -> Result<ExitCode> {
    let mut hub = connect(global).await?;
    let mut stream = hub.stream_logs(args.app.clone(), args.follow).await?;
    loop {
        let line = match stream.message().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(status) => return Err(hub.stream_error(status, "StreamLogs")),
        };
        print_line(output, &args.app, &line)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_line(output: &Output, app: &str, line: &LogLine) -> Result<()> {
    if output.json {
        let json = LogLineJson {
            text: &line.text,
            received_at_ms: line.received_at_ms,
            skipped_before: line.skipped_before,
        };
        output.print_text(&serde_json::to_string(&json)?)?;
        return Ok(());
    }
    if line.skipped_before > 0 {
        output.warn(&format!(
            "{} lines of {app} skipped because this client read too slowly",
            line.skipped_before
        ));
    }
    if line.text.is_empty() {
        output.print_text("\n")?;
    } else {
        output.print_text(&line.text)?;
    }
    Ok(())
}
