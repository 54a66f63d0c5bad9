//! Renders the measured figures as the Markdown page docs/benchmarks.md.

use std::fmt::Write;
use std::time::Duration;

use crate::cold::{ColdStarts, COLD_RUNS};
use crate::machine::MachineInfo;
use crate::stats::{ratio, Samples};
use crate::throughput::{Throughput, WINDOW};
use crate::warm::{WarmLatency, TIMED_CALLS};

/// Goal: a spoke's cold start takes no longer than bubblewrap's start of the same app.
pub const COLD_RATIO_GOAL: f64 = 1.0;

/// Goal: the median warm call through the hub takes at most this long.
pub const WARM_P50_GOAL: Duration = Duration::from_micros(300);

/// Resident memory after the run, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct MemoryUse {
    pub hub_kib: u64,
    pub spoke_kib: u64,
    pub app_kib: u64,
    /// Spokes with a running process when the sizes were read.
    pub spokes_running: usize,
    /// Memory charged to the spoke's cgroup, in bytes, from ListSpokes `memory_bytes`.
    pub spoke_cgroup_bytes: u64,
}

/// Everything one bench run measured, and where.
pub struct Report {
    pub machine: MachineInfo,
    /// When the run started, such as "2025-05-20 14:03 UTC".
    pub date_utc: String,
    pub command: String,
    pub cold: ColdStarts,
    pub warm: WarmLatency,
    pub throughput: Vec<Throughput>,
    pub memory: MemoryUse,
    pub egress: crate::egress::EgressFigures,
    /// Wall time of the whole bench.
    pub runtime: Duration,
}

impl Report {
    pub fn cold_ratio(&self) -> f64 {
        ratio(self.cold.bulkhead.median(), self.cold.bwrap.median())
    }

    pub fn cold_goal_met(&self) -> bool {
        self.cold_ratio() <= COLD_RATIO_GOAL
    }

    pub fn warm_goal_met(&self) -> bool {
        self.warm.bulkhead.median() <= WARM_P50_GOAL
    }

    /// Renders the whole page.
    pub fn to_markdown(&self) -> String {
        let mut page = String::new();
        self.write_intro(&mut page);
        self.write_machine(&mut page);
        self.write_goals(&mut page);
        self.write_cold(&mut page);
        self.write_warm(&mut page);
        self.write_throughput(&mut page);
        self.write_memory(&mut page);
        page.push('\n');
        page.push_str(&self.egress.to_markdown());
        page
    }

    fn write_intro(&self, page: &mut String) {
        page.push_str("# Benchmarks\n\n");
        page.push_str(
            "This page is written by `bulkhead-bench`. It measures:\n\n\
             - cold start: how long the hub takes to start a spoke and return its tool catalog;\n\
             - warm call latency: how long a tool call through the hub takes once the spoke runs;\n\
             - throughput: how many calls per second the hub serves;\n\
             - memory: the resident size of the hub, a spoke runtime and its app.\n\n\
             Each timing is set against a baseline measured in the same run, because the machine \
             is shared and noisy. Compare the ratios, and read the absolute times as this \
             machine's only.\n\n",
        );
        page.push_str(
            "To rerun it, as root:\n\n```sh\nmake bench\n```\n\n\
             `make bench` builds the release binaries, installs bubblewrap when `bwrap` is missing, \
             and runs `target/release/bulkhead-bench --out docs/benchmarks.md`, which starts its \
             own `bulkheadd` in a temp dir and rewrites this page.\n\n",
        );
    }

    fn write_machine(&self, page: &mut String) {
        let machine = &self.machine;
        page.push_str("## Run\n\n| | |\n|---|---|\n");
        // Writing to a String cannot fail.
        let _ = writeln!(page, "| Date | {} |", self.date_utc);
        let _ = writeln!(page, "| Command | `{}` |", self.command);
        let _ = writeln!(page, "| CPU | {} |", machine.cpu_model);
        let _ = writeln!(page, "| CPUs (`nproc`) | {} |", machine.cpus);
        let _ = writeln!(page, "| Memory | {} |", format_kib(machine.memory_kib));
        let _ = writeln!(page, "| Kernel | {} |", machine.kernel);
        let _ = writeln!(page, "| cgroups | {} |", machine.cgroups);
        let _ = writeln!(
            page,
            "| Bench runtime | {:.1} s |\n",
            self.runtime.as_secs_f64()
        );
    }

    fn write_goals(&self, page: &mut String) {
        page.push_str("## Goals\n\n| Goal | Measured | Met |\n|---|---|---|\n");
        let _ = writeln!(
            page,
            "| Cold start no slower than bubblewrap's (median ratio ≤ {COLD_RATIO_GOAL:.1}) | {:.2} ({} ms / {} ms) | {} |",
            self.cold_ratio(),
            format_ms(self.cold.bulkhead.median()),
            format_ms(self.cold.bwrap.median()),
            yes_no(self.cold_goal_met())
        );
        let _ = writeln!(
            page,
            "| Warm call p50 ≤ {} µs | {} µs | {} |\n",
            WARM_P50_GOAL.as_micros(),
            self.warm.bulkhead.median().as_micros(),
            yes_no(self.warm_goal_met())
        );
        let _ = writeln!(
            page,
            "- The cold start goal is {}: the median spoke start took {} ms, {:.2} times bubblewrap's {} ms.",
            met_text(self.cold_goal_met()),
            format_ms(self.cold.bulkhead.median()),
            self.cold_ratio(),
            format_ms(self.cold.bwrap.median())
        );
        let _ = writeln!(
            page,
            "- The warm call goal is {}: the median call through the hub took {} µs against a goal of {} µs.\n",
            met_text(self.warm_goal_met()),
            self.warm.bulkhead.median().as_micros(),
            WARM_P50_GOAL.as_micros()
        );
    }

    fn write_cold(&self, page: &mut String) {
        page.push_str("## Cold start\n\n");
        let _ = writeln!(
            page,
            "Each of {COLD_RUNS} copies of the notes example app (`bench-cold-1` to `bench-cold-{COLD_RUNS}`) is \
             registered with RegisterApp, and its first ListTools is timed. That call starts the \
             spoke: the launcher, the namespaces, the mounts, the cgroup limits, the seccomp filter, \
             the exec of the app, the MCP initialize handshake and tools/list. The catalog then \
             returns over gRPC.\n\n\
             The baseline runs the same binary under `bwrap --unshare-all --die-with-parent \
             --new-session`. It gets read-only /usr, the host's top-level links, fresh /proc, /dev \
             and /tmp, and a fresh state dir at /state, but no cgroup limits and no seccomp filter. \
             The bench speaks MCP to it over stdio and stops the clock when the tools/list response \
             arrives. The two kinds of start alternate, so that both see the same load.\n"
        );
        page.push_str("| Start | Runs | Median | Min | Max |\n|---|---|---|---|---|\n");
        write_ms_row(page, "bulkhead spoke (ListTools)", &self.cold.bulkhead);
        write_ms_row(page, "bubblewrap, same app", &self.cold.bwrap);
        let _ = writeln!(
            page,
            "\nRatio of medians, bulkhead / bubblewrap: **{:.2}**.\n",
            self.cold_ratio()
        );
    }

    fn write_warm(&self, page: &mut String) {
        let warm = &self.warm;
        page.push_str("## Warm call latency\n\n");
        let _ = writeln!(
            page,
            "With `bench-cold-1` warm, one gRPC connection makes 200 untimed calls and then {TIMED_CALLS} \
             timed sequential CallTool(`bench-cold-1`, `list_notes`, `{{}}`) calls. The baseline sends \
             the same number of MCP tools/call requests straight to an unsandboxed \
             `bulkhead-app-notes` over its stdin and stdout, with no hub and no gRPC.\n"
        );
        page.push_str("| Route | Calls | p50 | p90 | p99 |\n|---|---|---|---|---|\n");
        write_us_row(page, "through the hub and spoke", &warm.bulkhead);
        write_us_row(page, "straight to the app", &warm.direct);
        let _ = writeln!(
            page,
            "\nRatio through the hub / straight: p50 **{:.2}**, p99 **{:.2}**.\n",
            ratio(warm.bulkhead.median(), warm.direct.median()),
            ratio(warm.bulkhead.percentile(99), warm.direct.percentile(99))
        );
    }

    fn write_throughput(&self, page: &mut String) {
        page.push_str("## Throughput\n\n");
        let _ = writeln!(
            page,
            "Closed-loop clients call `list_notes` back to back for {} s. Each client is a tokio task \
             with its own connection. The bench's client runs on one thread on the same machine as \
             the hub, so both share the CPUs.\n",
            WINDOW.as_secs()
        );
        page.push_str("| Clients | Warm apps | Calls/s | Errors |\n|---|---|---|---|\n");
        for run in &self.throughput {
            let _ = writeln!(
                page,
                "| {} | {} | {:.0} | {} |",
                run.clients,
                run.apps,
                run.calls_per_second(),
                run.errors
            );
        }
        page.push('\n');
    }

    fn write_memory(&self, page: &mut String) {
        let memory = &self.memory;
        page.push_str("## Memory\n\n");
        let _ = writeln!(
            page,
            "Resident set sizes (`VmRSS` in /proc/PID/status) after the run, with {} spokes \
             running. The spoke is `bench-cold-1`'s, and its pids come from ListSpokes.\n",
            memory.spokes_running
        );
        page.push_str("| Process | RSS |\n|---|---|\n");
        let _ = writeln!(page, "| bulkheadd | {} |", format_kib(memory.hub_kib));
        let _ = writeln!(
            page,
            "| bulkhead-spoke serve (spoke runtime) | {} |",
            format_kib(memory.spoke_kib)
        );
        let _ = writeln!(
            page,
            "| bulkhead-app-notes (in the spoke) | {} |",
            format_kib(memory.app_kib)
        );
        let _ = writeln!(
            page,
            "\nThe spoke's cgroup is charged {} (ListSpokes `memory_bytes`). That differs from the sum \
             of the RSS figures: RSS counts shared pages, such as the binaries' code in the page \
             cache, while the kernel charges each page only to the cgroup that first used it.",
            format_kib(memory.spoke_cgroup_bytes / 1024)
        );
    }
}

fn write_ms_row(page: &mut String, label: &str, samples: &Samples) {
    let _ = writeln!(
        page,
        "| {label} | {} | {} ms | {} ms | {} ms |",
        samples.len(),
        format_ms(samples.median()),
        format_ms(samples.min()),
        format_ms(samples.max())
    );
}

fn write_us_row(page: &mut String, label: &str, samples: &Samples) {
    let _ = writeln!(
        page,
        "| {label} | {} | {} µs | {} µs | {} µs |",
        samples.len(),
        samples.median().as_micros(),
        samples.percentile(90).as_micros(),
        samples.percentile(99).as_micros()
    );
}

fn format_ms(value: Duration) -> String {
    format!("{:.1}", value.as_secs_f64() * 1e3)
}

fn format_kib(kib: u64) -> String {
    // Memory sizes stay far below 2^53 KiB, so the conversion is exact.
    #[allow(clippy::cast_precision_loss)]
    let mib = kib as f64 / 1024.0;
    format!("{mib:.1} MiB")
}

fn yes_no(met: bool) -> &'static str {
    if met {
        "yes"
    } else {
        "**no**"
    }
}

fn met_text(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "not met"
    }
}

#[cfg(test)]
mod tests;
