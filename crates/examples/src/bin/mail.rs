//! bulkhead-app-mail: an MCP stdio server with a built-in inbox and an outbox in the state
//! directory.

use anyhow::Context;
use bulkhead_examples::{mail::MailServer, runtime, state_dir};

fn main() -> anyhow::Result<()> {
    runtime::init_logging();
    let state_dir = state_dir();
    let server = MailServer::open(&state_dir)
        .with_context(|| format!("failed to open the mailbox in {}", state_dir.display()))?;
    runtime::serve_stdio(server)
}
