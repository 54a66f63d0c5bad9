//! `bulkhead spokes`.

use std::process::ExitCode;

use anyhow::Result;
use bulkhead_proto::v1::Spoke;
use serde::Serialize;

use super::connect;
use crate::args::GlobalOptions;
use crate::output::Output;
use crate::table::Table;
use crate::units::format_bytes;

/// A spoke as `--json` prints it, with numbers as JSON numbers.
#[derive(Debug, Serialize)]
pub(super) struct SpokeJson {
    app: String,
    pid: u32,
    app_pid: u32,
    state: String,
    started_at_ms: u64,
    restarts: u32,
    last_exit: String,
    memory_bytes: u64,
    calls: u64,
    egress_open: u32,
    egress_connections: u64,
    egress_refused: u64,
    egress_bytes_sent: u64,
    egress_bytes_received: u64,
}

impl From<Spoke> for SpokeJson {
    fn from(spoke: Spoke) -> Self {
        SpokeJson {
            app: spoke.app,
            pid: spoke.pid,
            app_pid: spoke.app_pid,
            state: spoke.state,
            started_at_ms: spoke.started_at_ms,
            restarts: spoke.restarts,
            last_exit: spoke.last_exit,
            memory_bytes: spoke.memory_bytes,
            calls: spoke.calls,
            egress_open: spoke.egress_open,
            egress_connections: spoke.egress_connections,
            egress_refused: spoke.egress_refused,
            egress_bytes_sent: spoke.egress_bytes_sent,
            egress_bytes_received: spoke.egress_bytes_received,
        }
    }
}

pub async fn run(global: &GlobalOptions, output: &Output) -> Result<ExitCode> {
    let reply = connect(global).await?.list_spokes().await?;

    if output.json {
        let spokes: Vec<SpokeJson> = reply.spokes.into_iter().map(SpokeJson::from).collect();
        output.print_json(&spokes)?;
        return Ok(ExitCode::SUCCESS);
    }

    let table = spoke_table(&reply.spokes);
    if table.is_empty() {
        output.print_text(
            "no spokes; the hub starts one when a tool of its app is listed or called",
        )?;
    } else {
        output.print_table(&table, false)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn spoke_table(spokes: &[Spoke]) -> Table {
    let mut table = Table::new(&[
        "APP",
        "STATE",
        "PID",
        "APP_PID",
        "MEMORY",
        "CALLS",
        "NET_SENT",
        "NET_RECEIVED",
        "NET_REFUSED",
        "RESTARTS",
        "LAST_EXIT",
    ]);
    for spoke in spokes {
        table.push(vec![
            spoke.app.clone(),
            spoke.state.clone(),
            pid_cell(spoke.pid),
            pid_cell(spoke.app_pid),
            format_bytes(spoke.memory_bytes),
            spoke.calls.to_string(),
            format_bytes(spoke.egress_bytes_sent),
            format_bytes(spoke.egress_bytes_received),
            spoke.egress_refused.to_string(),
            spoke.restarts.to_string(),
            dash_if_empty(&spoke.last_exit),
        ]);
    }
    table
}

/// Shows pid 0, which the hub sends when no such process runs, as "-".
fn pid_cell(pid: u32) -> String {
    if pid == 0 {
        "-".to_owned()
    } else {
        pid.to_string()
    }
}

fn dash_if_empty(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spoke(app: &str, pid: u32, memory_bytes: u64, last_exit: &str) -> Spoke {
        Spoke {
            app: app.into(),
            pid,
            app_pid: if pid == 0 { 0 } else { pid + 1 },
            state: if pid == 0 { "backoff" } else { "ready" }.into(),
            started_at_ms: 1_700_000_000_000,
            restarts: 2,
            last_exit: last_exit.into(),
            memory_bytes,
            calls: 17,
            egress_open: 1,
            egress_connections: 3,
            egress_refused: 2,
            egress_bytes_sent: 1536,
            egress_bytes_received: 5 * 1024 * 1024,
        }
    }

    #[test]
    fn spoke_table_formats_cells() {
        let spokes = [
            spoke("notes", 4242, 12 * 1024 * 1024 + 300 * 1024, ""),
            spoke("mail", 0, 0, "out of memory"),
        ];
        let expected = "\
APP    STATE    PID   APP_PID  MEMORY    CALLS  NET_SENT  NET_RECEIVED  NET_REFUSED  RESTARTS  LAST_EXIT
notes  ready    4242  4243     12.3 MiB  17     1.5 KiB   5.0 MiB       2            2         -
mail   backoff  -     -        0 B       17     1.5 KiB   5.0 MiB       2            2         out of memory
";
        assert_eq!(spoke_table(&spokes).render(None), expected);
    }

    #[test]
    fn spoke_json_keeps_numbers() {
        let json = serde_json::to_value(SpokeJson::from(spoke("notes", 7, 2048, "")));
        let json = json.expect("serializes");
        assert_eq!(json["pid"], 7);
        assert_eq!(json["app_pid"], 8);
        assert_eq!(json["memory_bytes"], 2048);
        assert_eq!(json["started_at_ms"], 1_700_000_000_000_u64);
        assert_eq!(json["calls"], 17);
        assert_eq!(json["restarts"], 2);
        assert_eq!(json["last_exit"], "");
        assert_eq!(json["state"], "ready");
        assert_eq!(json["egress_open"], 1);
        assert_eq!(json["egress_connections"], 3);
        assert_eq!(json["egress_refused"], 2);
        assert_eq!(json["egress_bytes_sent"], 1536);
        assert_eq!(json["egress_bytes_received"], 5 * 1024 * 1024);
    }
}
