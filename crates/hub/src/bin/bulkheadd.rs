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
    init_logging();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("bulkheadd: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The journal's native socket, where tracing-journald sends one datagram per event with its fields.
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Logs to the journal with structured fields when systemd connected stderr to it (JOURNAL_STREAM
/// is set) and the journal socket exists, and as text on stderr otherwise. BULKHEAD_LOG sets the
/// filter, "info" by default.
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("BULKHEAD_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some() && std::path::Path::new(JOURNAL_SOCKET).exists();
    if under_journal {
        match tracing_journald::layer() {
            Ok(journal) => {
                tracing_subscriber::registry().with(filter()).with(journal.with_syslog_identifier("bulkheadd".into())).init();
                return;
            }
            Err(error) => eprintln!("bulkheadd: cannot connect to {JOURNAL_SOCKET}: {error}; logging to stderr"),
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
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
