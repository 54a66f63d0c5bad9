//! Throughput: closed-loop clients, each on its own connection, calling warm spokes for a fixed
//! window.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::task::JoinSet;

use crate::client::HubClient;
use crate::cold::PROBE_TOOL;

/// How long each throughput run lasts.
pub const WINDOW: Duration = Duration::from_secs(3);

/// Upper bound on calls (and failed calls) per client in one window, far above what a window
/// can hold, so that a loop of instant failures still ends.
const MAX_CALLS_PER_CLIENT: u64 = 1_000_000;

/// One throughput run.
#[derive(Debug, Clone)]
pub struct Throughput {
    pub clients: usize,
    pub apps: usize,
    /// Calls that succeeded within the window.
    pub calls: u64,
    pub errors: u64,
    /// The first failure's message, when there was one.
    pub first_error: Option<String>,
}

impl Throughput {
    pub fn calls_per_second(&self) -> f64 {
        // Call counts stay far below 2^53, so the conversion is exact.
        #[allow(clippy::cast_precision_loss)]
        let calls = self.calls as f64;
        calls / WINDOW.as_secs_f64()
    }
}

/// Call counts of one client in the window.
#[derive(Default)]
struct ClientTally {
    calls: u64,
    errors: u64,
    first_error: Option<String>,
}

/// Runs `clients` clients, client i calling `apps[i % apps.len()]`, for one window.
pub async fn measure(socket: &Path, clients: usize, apps: &[String]) -> Result<Throughput> {
    if apps.is_empty() || clients == 0 {
        bail!("a throughput run needs at least one client and one app");
    }
    let mut connections = Vec::with_capacity(clients);
    for index in 0..clients {
        let client = HubClient::connect(socket)
            .await
            .with_context(|| format!("throughput client {} failed to connect", index + 1))?;
        connections.push(client);
    }

    let deadline = Instant::now() + WINDOW;
    let mut tasks = JoinSet::new();
    for (index, client) in connections.into_iter().enumerate() {
        let app = apps[index % apps.len()].clone();
        tasks.spawn(run_client(client, app, deadline));
    }

    let mut total = Throughput {
        clients,
        apps: apps.len(),
        calls: 0,
        errors: 0,
        first_error: None,
    };
    while let Some(joined) = tasks.join_next().await {
        let tally = joined.context("a throughput client task panicked")?;
        total.calls += tally.calls;
        total.errors += tally.errors;
        total.first_error = total.first_error.or(tally.first_error);
    }
    eprintln!(
        "bench: throughput with clients={clients} apps={}: {:.0} calls/s, {} errors",
        apps.len(),
        total.calls_per_second(),
        total.errors
    );
    if let Some(error) = &total.first_error {
        eprintln!("bench: first throughput error: {error}");
    }
    Ok(total)
}

/// Calls `app` back to back until `deadline`, counting the calls that finished before it.
async fn run_client(mut client: HubClient, app: String, deadline: Instant) -> ClientTally {
    let mut tally = ClientTally::default();
    while Instant::now() < deadline && tally.calls + tally.errors < MAX_CALLS_PER_CLIENT {
        let result = client.call_tool(&app, PROBE_TOOL).await;
        if Instant::now() > deadline {
            break;
        }
        match result {
            Ok(()) => tally.calls += 1,
            Err(error) => {
                tally.errors += 1;
                tally
                    .first_error
                    .get_or_insert_with(|| format!("{error:#}"));
            }
        }
    }
    tally
}
