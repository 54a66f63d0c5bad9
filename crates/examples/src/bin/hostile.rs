//! bulkhead-app-hostile: a test-only MCP stdio server whose tools try to escape the sandbox.

use bulkhead_examples::{hostile, runtime};

fn main() -> anyhow::Result<()> {
    hostile::run_helper_mode();
    runtime::init_logging();
    runtime::serve_stdio(hostile::HostileServer::new())
}
