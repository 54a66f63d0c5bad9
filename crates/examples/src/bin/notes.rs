//! bulkhead-app-notes: an MCP stdio server that keeps short text notes.

use anyhow::Context;
use bulkhead_examples::{notes::NotesServer, runtime, state_dir};

fn main() -> anyhow::Result<()> {
    runtime::init_logging();
    let state_dir = state_dir();
    let server = NotesServer::open(&state_dir)
        .with_context(|| format!("failed to open the notes in {}", state_dir.display()))?;
    runtime::serve_stdio(server)
}
