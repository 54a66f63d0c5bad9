//! bulkheadd: the bulkhead hub daemon.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// The bulkhead hub: serves agents over gRPC and runs each app in its own sandboxed spoke.
#[derive(Debug, Parser)]
#[command(name = "bulkheadd", version)]
struct Args {
    /// The hub's TOML config file.
    #[arg(long, short, default_value = "/etc/bulkhead/hub.toml", env = "BULKHEAD_CONFIG")]
    config: PathBuf,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BULKHEAD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("bulkheadd: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let mut config = bulkhead_hub::config::Config::load(&args.config)?;
    let exe = std::env::current_exe().context("cannot find bulkheadd's own path")?;
    let exe_dir = exe.parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    config.resolve_binaries(&exe_dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(bulkhead_hub::daemon::run(config))?;
    Ok(())
}
