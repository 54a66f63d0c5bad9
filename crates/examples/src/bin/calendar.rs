//! bulkhead-app-calendar: an MCP stdio server that keeps a calendar of events.

use anyhow::Context;
use bulkhead_examples::{calendar::CalendarServer, runtime, state_dir};

fn main() -> anyhow::Result<()> {
    runtime::init_logging();
    let state_dir = state_dir();
    let server = CalendarServer::open(&state_dir)
        .with_context(|| format!("failed to open the calendar in {}", state_dir.display()))?;
    runtime::serve_stdio(server)
}
