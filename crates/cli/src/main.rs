//! `bulkhead`: the command-line client of the bulkhead hub.
//!
//! It talks gRPC to `bulkheadd` over the hub's Unix socket. Results go to stdout as aligned text,
//! or as one JSON document with `--json`. A failure prints one "error: WHAT; FIX" line on stderr
//! and exits with 1, and a usage error exits with 2.

mod args;
mod commands;
mod connect;
mod errors;
mod output;
mod table;
mod units;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;
use crate::table::single_line;

fn main() -> ExitCode {
    let cli = Cli::parse();

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            report(&format!(
                "cannot start the async runtime: {err}; check the process limits"
            ));
            return ExitCode::FAILURE;
        }
    };

    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            report(&format!("{err:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Prints one "error: " line on stderr.
fn report(message: &str) {
    let line = format!("error: {}\n", single_line(message));
    // A closed stderr leaves no place to report the failure, so the exit code carries it alone.
    let _ = io::stderr().lock().write_all(line.as_bytes());
}

/// Reports whether the error is stdout closing early, as with `bulkhead tools | head -1`, which is
/// no failure of the command.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.downcast_ref::<io::Error>()
        .is_some_and(|err| err.kind() == io::ErrorKind::BrokenPipe)
}
