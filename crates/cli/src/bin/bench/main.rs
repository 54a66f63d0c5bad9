//! `bulkhead-bench`: measures spoke cold starts, warm call latency, throughput and memory against
//! baselines from the same run, and writes the results as Markdown.
//!
//! It starts its own `bulkheadd` from the folder that contains this binary, with a config in a temp
//! dir, and needs root for the same reasons the hub does. The hub is stopped and the temp dir
//! removed when the bench ends, fails or receives SIGINT or SIGTERM.

mod client;
mod cold;
mod egress;
mod hub;
mod machine;
mod mcp;
mod queries;
mod report;
mod stats;
mod throughput;
mod warm;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};

use crate::client::HubClient;
use crate::cold::{app_name, ColdSetup};
use crate::hub::HubUnderTest;
use crate::machine::{vm_rss_kib, MachineInfo};
use crate::report::{MemoryUse, Report};

/// Number of warm apps the spread-out throughput run calls.
const SPREAD_APPS: usize = 4;

/// Concurrent clients in the multi-client throughput runs.
const MANY_CLIENTS: usize = 16;

/// Measures bulkhead's spoke start, call latency, throughput and memory. Run it as root.
#[derive(Debug, Parser)]
#[command(name = "bulkhead-bench", version)]
struct Args {
    /// Markdown file to write the results to. Without it, the results go to stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,

    /// Run only the query benchmark, bulkhead's planner against a vanilla agent loop, and print
    /// its section
    #[arg(long)]
    queries: bool,

    /// Latency of each scripted LLM call in the query benchmark, such as 200ms
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = humantime::parse_duration)]
    llm_latency: std::time::Duration,

    /// Timed runs of each query scenario, after one warm-up
    #[arg(long, value_name = "COUNT", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    repeat: u16,

    /// Runs only this section and prints its Markdown, without the rest of the page.
    #[arg(long, value_enum, value_name = "SECTION")]
    only: Option<Section>,
}

/// A part of the bench that `--only` can run alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Section {
    /// Throughput and connection setup through the egress proxy against direct downloads.
    Egress,
}

/// The programs the bench runs.
struct Binaries {
    bulkheadd: PathBuf,
    notes: PathBuf,
    bwrap: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("bench: error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_until_signal(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the bench, and on SIGINT or SIGTERM drops it, which stops the hub and removes the temp
/// dir.
async fn run_until_signal(args: Args) -> Result<()> {
    let mut interrupt = signal(SignalKind::interrupt()).context("failed to handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("failed to handle SIGTERM")?;
    tokio::select! {
        result = run(args) => result,
        _ = interrupt.recv() => Err(anyhow!("interrupted by SIGINT; the hub was stopped")),
        _ = terminate.recv() => Err(anyhow!("stopped by SIGTERM; the hub was stopped")),
    }
}

async fn run(args: Args) -> Result<()> {
    require_root()?;
    if args.queries {
        return run_queries(&args).await;
    }
    let binaries = locate_binaries()?;
    let started = Instant::now();
    let date_utc = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let machine = MachineInfo::collect();

    eprintln!("bench: starting {}", binaries.bulkheadd.display());
    let hub = HubUnderTest::start(&binaries.bulkheadd).await?;
    if args.only == Some(Section::Egress) {
        let figures = match egress_section(&hub).await {
            Ok(figures) => figures,
            Err(err) => {
                eprintln!("bench: bulkheadd's log ends with:\n{}", hub.log_tail(30));
                return Err(err);
            }
        };
        drop(hub);
        return write_page(&figures.to_markdown(), args.out.as_deref(), started);
    }
    let measured = match measure(&hub, &binaries).await {
        Ok(measured) => measured,
        Err(err) => {
            eprintln!("bench: bulkheadd's log ends with:\n{}", hub.log_tail(30));
            return Err(err);
        }
    };
    drop(hub);

    let report = Report {
        machine,
        date_utc,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        cold: measured.cold,
        warm: measured.warm,
        throughput: measured.throughput,
        memory: measured.memory,
        egress: measured.egress,
        runtime: started.elapsed(),
    };
    write_report(&report, args.out.as_deref())
}

/// Runs the query benchmark on its own and writes its Markdown section.
async fn run_queries(args: &Args) -> Result<()> {
    let exe = std::env::current_exe().context("failed to find bulkhead-bench's own path")?;
    let dir = exe.parent().ok_or_else(|| anyhow!("{} has no parent folder", exe.display()))?;
    for name in ["bulkheadd", "bulkhead-spoke", "bulkhead-app-notes", "bulkhead-app-calendar", "bulkhead-app-mail"] {
        if !dir.join(name).is_file() {
            bail!("{} not found; build it with `cargo build --release --workspace`", dir.join(name).display());
        }
    }
    let repeat = usize::from(args.repeat);
    let rows = queries::measure(&dir.join("bulkheadd"), dir, args.llm_latency, repeat).await?;
    let page = queries::to_markdown(&rows, args.llm_latency, repeat);
    match &args.out {
        Some(path) => std::fs::write(path, page).with_context(|| format!("failed to write {}", path.display())),
        None => {
            print!("{page}");
            Ok(())
        }
    }
}

/// Figures from the phases that need the hub.
struct Measured {
    cold: cold::ColdStarts,
    warm: warm::WarmLatency,
    throughput: Vec<throughput::Throughput>,
    memory: MemoryUse,
    egress: egress::EgressFigures,
}

async fn egress_section(hub: &HubUnderTest) -> Result<egress::EgressFigures> {
    let mut client = HubClient::connect(hub.socket()).await?;
    egress::measure(&mut client).await
}

async fn measure(hub: &HubUnderTest, binaries: &Binaries) -> Result<Measured> {
    let mut client = HubClient::connect(hub.socket()).await?;
    let setup = ColdSetup {
        bwrap: &binaries.bwrap,
        notes_binary: &binaries.notes,
        scratch: hub.dir(),
    };
    let cold = cold::measure(&mut client, &setup).await?;
    if cold.bulkhead.len() < SPREAD_APPS {
        bail!(
            "only {} apps started, and the throughput runs need {SPREAD_APPS}",
            cold.bulkhead.len()
        );
    }

    let first_app = app_name(1);
    let direct_state = hub.dir().join("direct-state");
    let warm = warm::measure(hub.socket(), &first_app, &binaries.notes, &direct_state).await?;

    let spread: Vec<String> = (1..=SPREAD_APPS).map(app_name).collect();
    let mut runs = Vec::new();
    for (clients, apps) in [
        (1, &spread[..1]),
        (MANY_CLIENTS, &spread[..1]),
        (MANY_CLIENTS, &spread[..]),
    ] {
        runs.push(throughput::measure(hub.socket(), clients, apps).await?);
    }

    let memory = read_memory(&mut client, hub.pid(), &first_app).await?;
    let egress = egress::measure(&mut client).await?;
    Ok(Measured {
        cold,
        warm,
        throughput: runs,
        memory,
        egress,
    })
}

async fn read_memory(client: &mut HubClient, hub_pid: u32, app: &str) -> Result<MemoryUse> {
    let spokes = client.list_spokes().await?;
    let spoke = spokes
        .iter()
        .find(|spoke| spoke.app == app && spoke.pid != 0)
        .ok_or_else(|| anyhow!("ListSpokes lists no running spoke for {app} after the run"))?;
    if spoke.app_pid == 0 {
        bail!("ListSpokes reports no app pid for {app}'s spoke");
    }
    let memory = MemoryUse {
        hub_kib: vm_rss_kib(hub_pid)?,
        spoke_kib: vm_rss_kib(spoke.pid)?,
        app_kib: vm_rss_kib(spoke.app_pid)?,
        spokes_running: spokes.iter().filter(|spoke| spoke.pid != 0).count(),
        spoke_cgroup_bytes: spoke.memory_bytes,
    };
    eprintln!(
        "bench: RSS: bulkheadd {} KiB, spoke {} KiB, app {} KiB",
        memory.hub_kib, memory.spoke_kib, memory.app_kib
    );
    Ok(memory)
}

fn write_report(report: &Report, out: Option<&Path>) -> Result<()> {
    let page = report.to_markdown();
    match out {
        Some(path) => {
            std::fs::write(path, page)
                .with_context(|| format!("failed to write {}", path.display()))?;
            eprintln!(
                "bench: wrote {} in {:.1} s",
                path.display(),
                report.runtime.as_secs_f64()
            );
        }
        None => print!("{page}"),
    }
    Ok(())
}

/// Writes one section's Markdown to `out`, or to stdout without it.
fn write_page(page: &str, out: Option<&Path>, started: Instant) -> Result<()> {
    match out {
        Some(path) => {
            std::fs::write(path, page).with_context(|| format!("failed to write {}", path.display()))?;
            eprintln!("bench: wrote {} in {:.1} s", path.display(), started.elapsed().as_secs_f64());
        }
        None => print!("{page}"),
    }
    Ok(())
}

fn require_root() -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        bail!("bulkhead-bench needs root to start bulkheadd, which creates namespaces and cgroups; run it with sudo");
    }
    Ok(())
}

/// Finds bulkheadd and the notes app beside this executable, and bwrap on PATH.
fn locate_binaries() -> Result<Binaries> {
    let exe = std::env::current_exe().context("failed to find bulkhead-bench's own path")?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent folder", exe.display()))?;
    let beside = |name: &str| -> Result<PathBuf> {
        let path = dir.join(name);
        if !path.is_file() {
            bail!(
                "{} not found; build it with `cargo build --release --workspace`",
                path.display()
            );
        }
        Ok(path)
    };
    // The hub looks for the spoke runtime in the same folder, so check for it here too.
    beside("bulkhead-spoke")?;

    Ok(Binaries {
        bulkheadd: beside("bulkheadd")?,
        notes: beside("bulkhead-app-notes")?,
        bwrap: find_on_path("bwrap").ok_or_else(|| {
            anyhow!("bwrap not found on PATH; install it with `apt-get install bubblewrap`")
        })?,
    })
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
