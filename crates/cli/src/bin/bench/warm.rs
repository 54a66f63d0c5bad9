//! Warm call latency: sequential tool calls through the hub to a warm spoke, against the same
//! calls sent straight to an unsandboxed app over its stdio.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use serde_json::json;
use tokio::process::Command;

use crate::client::HubClient;
use crate::cold::PROBE_TOOL;
use crate::mcp::McpChild;
use crate::stats::Samples;

/// Untimed calls before the timed ones, to fill caches and settle allocators.
const WARM_UP_CALLS: usize = 200;

/// Timed sequential calls for each of the hub and the direct baseline.
pub const TIMED_CALLS: usize = 3000;

/// Time after which each series stops, even short of `TIMED_CALLS`.
const SERIES_DEADLINE: Duration = Duration::from_secs(30);

/// Latencies of the same call through the hub and straight to the app.
pub struct WarmLatency {
    pub bulkhead: Samples,
    pub direct: Samples,
}

/// Measures `app`'s warm calls through the hub, then the direct baseline with its own app
/// process whose state lives in `state_dir`.
pub async fn measure(
    socket: &Path,
    app: &str,
    notes_binary: &Path,
    state_dir: &Path,
) -> Result<WarmLatency> {
    let mut client = HubClient::connect(socket).await?;
    client.running_spoke(app).await?;
    let bulkhead = time_series(
        "hub",
        &mut HubCall {
            client: &mut client,
            app,
        },
    )
    .await?;
    eprintln!("bench: warm calls through the hub: {}", describe(&bulkhead));

    std::fs::create_dir(state_dir)
        .with_context(|| format!("failed to create {}", state_dir.display()))?;
    let mut command = Command::new(notes_binary);
    command.env("BULKHEAD_STATE_DIR", state_dir);
    let mut direct_app = McpChild::spawn("unsandboxed notes app", command)?;
    direct_app.initialize().await?;
    let direct = time_series("direct", &mut direct_app).await;
    direct_app.stop().await;
    let direct = direct?;
    eprintln!(
        "bench: warm calls straight to the app: {}",
        describe(&direct)
    );

    Ok(WarmLatency { bulkhead, direct })
}

/// One `list_notes` call, by whichever route is being measured.
trait ProbeCall {
    async fn call(&mut self) -> Result<()>;
}

struct HubCall<'a> {
    client: &'a mut HubClient,
    app: &'a str,
}

impl ProbeCall for HubCall<'_> {
    async fn call(&mut self) -> Result<()> {
        self.client.call_tool(self.app, PROBE_TOOL).await
    }
}

impl ProbeCall for McpChild {
    async fn call(&mut self) -> Result<()> {
        self.call_tool(PROBE_TOOL, json!({})).await
    }
}

/// Runs `WARM_UP_CALLS` untimed calls, then times up to `TIMED_CALLS` calls one at a time.
async fn time_series(label: &str, route: &mut impl ProbeCall) -> Result<Samples> {
    let series_start = Instant::now();
    for done in 0..WARM_UP_CALLS {
        route
            .call()
            .await
            .with_context(|| format!("{label} warm-up call {} failed", done + 1))?;
    }

    let mut latencies = Vec::with_capacity(TIMED_CALLS);
    for done in 0..TIMED_CALLS {
        if series_start.elapsed() > SERIES_DEADLINE {
            eprintln!("bench: {label} calls passed {SERIES_DEADLINE:?}; stopping after {done} timed calls");
            break;
        }
        let started = Instant::now();
        route
            .call()
            .await
            .with_context(|| format!("{label} timed call {} failed", done + 1))?;
        latencies.push(started.elapsed());
    }
    Samples::new(latencies)
        .ok_or_else(|| anyhow!("{label}: no call finished within {SERIES_DEADLINE:?}"))
}

fn describe(samples: &Samples) -> String {
    let micros = |value: Duration| value.as_micros();
    format!(
        "{} calls, p50 {} µs, p90 {} µs, p99 {} µs",
        samples.len(),
        micros(samples.median()),
        micros(samples.percentile(90)),
        micros(samples.percentile(99))
    )
}
