//! `bulkhead status`, `bulkhead reload` and `bulkhead version`.

use std::process::ExitCode;

use anyhow::Result;
use bulkhead_proto::v1::GetStatusResponse;
use serde::Serialize;

use super::apps::{warn_problems, ProblemJson};
use super::connect;
use super::spokes::{spoke_table, SpokeJson};
use crate::args::GlobalOptions;
use crate::output::Output;
use crate::units::{count, format_uptime};

#[derive(Debug, Serialize)]
struct StatusJson {
    version: String,
    uptime_seconds: u64,
    apps: u32,
    spokes: u32,
    manifest_problems: u32,
    socket: String,
    pending_approvals: u32,
    spoke_list: Vec<SpokeJson>,
}

#[derive(Serialize)]
struct ReloadJson {
    apps: u32,
    problems: Vec<ProblemJson>,
}

#[derive(Serialize)]
struct VersionJson {
    version: &'static str,
}

pub async fn status(global: &GlobalOptions, output: &Output) -> Result<ExitCode> {
    let mut hub = connect(global).await?;
    let mut reply = hub.get_status().await?;
    let spokes = hub.list_spokes().await?.spokes;
    if reply.socket.is_empty() {
        reply.socket = hub.socket().display().to_string();
    }

    if output.json {
        let status = StatusJson {
            version: reply.version,
            uptime_seconds: reply.uptime_seconds,
            apps: reply.apps,
            spokes: reply.spokes,
            manifest_problems: reply.manifest_problems,
            socket: reply.socket,
            pending_approvals: reply.pending_approvals,
            spoke_list: spokes.into_iter().map(SpokeJson::from).collect(),
        };
        output.print_json(&status)?;
    } else {
        output.print_text(&status_line(&reply))?;
        if !spokes.is_empty() {
            output.print_table(&spoke_table(&spokes), false)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn reload(global: &GlobalOptions, output: &Output) -> Result<ExitCode> {
    let reply = connect(global).await?.reload().await?;

    if output.json {
        let reload = ReloadJson {
            apps: reply.apps,
            problems: reply.problems.into_iter().map(ProblemJson::from).collect(),
        };
        output.print_json(&reload)?;
    } else {
        output.print_text(&format!("reloaded: {}", count(reply.apps.into(), "app")))?;
        warn_problems(output, &reply.problems);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn version(output: &Output) -> Result<ExitCode> {
    let version = env!("CARGO_PKG_VERSION");
    if output.json {
        output.print_json(&VersionJson { version })?;
    } else {
        output.print_text(&format!("bulkhead {version}"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Formats the one-line status, such as "bulkheadd 0.1.0, up 2h 3m, 3 apps, 1 spoke, 0 pending
/// approvals, socket /run/bulkhead/hub.sock, 0 manifest problems".
fn status_line(status: &GetStatusResponse) -> String {
    let mut line = format!(
        "bulkheadd {}, up {}, {}, {}, {}, socket {}, {}",
        status.version,
        format_uptime(status.uptime_seconds),
        count(status.apps.into(), "app"),
        count(status.spokes.into(), "spoke"),
        count(status.pending_approvals.into(), "pending approval"),
        status.socket,
        count(status.manifest_problems.into(), "manifest problem"),
    );
    if status.manifest_problems > 0 {
        line.push_str(" (see `bulkhead apps list`)");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(manifest_problems: u32) -> GetStatusResponse {
        GetStatusResponse {
            version: "0.1.0".into(),
            uptime_seconds: 2 * 3600 + 3 * 60 + 4,
            apps: 3,
            spokes: 1,
            manifest_problems,
            socket: "/run/bulkhead/hub.sock".into(),
            pending_approvals: 0,
        }
    }

    #[test]
    fn status_line_without_problems() {
        assert_eq!(
            status_line(&status(0)),
            "bulkheadd 0.1.0, up 2h 3m, 3 apps, 1 spoke, 0 pending approvals, socket \
             /run/bulkhead/hub.sock, 0 manifest problems"
        );
    }

    #[test]
    fn status_line_points_at_problems() {
        let line = status_line(&status(1));
        assert!(
            line.ends_with(", 1 manifest problem (see `bulkhead apps list`)"),
            "{line}"
        );
    }
}
