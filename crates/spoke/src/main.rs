//! bulkhead-spoke: the spoke runtime.
//!
//! The binary has two modes, chosen by its first argument:
//!
//! - `launch`: the single-threaded launcher. The hub starts it with the launch spec on stdin and the
//!   spoke's channel at fd 3. It clones the spoke into its namespaces and waits for it. It must never
//!   start a tokio runtime or any other thread, because the namespace setup forks.
//! - `serve`: the spoke runtime proper, exec'd by the launcher as PID 1 of the new namespaces. It
//!   reaps zombies, starts the app, speaks MCP to it over stdio and serves the hub over fd 3. The
//!   app's sampling requests go to the hub on the Asks stream that the hub opens on fd 3.
#![deny(unsafe_op_in_unsafe_fn)]

mod app;
mod asks;
mod egress;
mod reaper;
mod runtime;
mod sampling;
mod service;

use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        "launch" => launch(),
        "serve" => runtime::serve(),
        "--version" | "version" => {
            println!("bulkhead-spoke {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "bulkhead-spoke is started by bulkheadd and is not meant to be run by hand; \
                 expected the mode `launch` or `serve`, got {mode:?}"
            );
            ExitCode::from(2)
        }
    }
}

/// Reads the launch spec from stdin and runs the launcher in this single-threaded process.
fn launch() -> ExitCode {
    let mut text = String::new();
    if let Err(error) = std::io::stdin().read_to_string(&mut text) {
        println!("{}", serde_json::json!({ "error": format!("cannot read the launch spec from stdin: {error}") }));
        return ExitCode::from(125);
    }
    let spec: bulkhead_sandbox::launch::LaunchSpec = match serde_json::from_str(&text) {
        Ok(spec) => spec,
        Err(error) => {
            println!("{}", serde_json::json!({ "error": format!("invalid launch spec: {error}") }));
            return ExitCode::from(125);
        }
    };
    let code = bulkhead_sandbox::launch::run_launcher(&spec);
    ExitCode::from(u8::try_from(code).unwrap_or(125))
}
