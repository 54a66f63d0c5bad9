use super::*;

fn samples(micros: &[u64]) -> Samples {
    let values = micros.iter().copied().map(Duration::from_micros).collect();
    Samples::new(values).expect("test samples are not empty")
}

fn report(cold_us: (&[u64], &[u64]), warm_us: (&[u64], &[u64])) -> Report {
    Report {
        machine: MachineInfo {
            cpu_model: "Test CPU".to_string(),
            cpus: 2,
            memory_kib: 2048 * 1024,
            kernel: "6.1.0-test".to_string(),
            cgroups: "v2 (cgroup2 at /sys/fs/cgroup, controllers: memory pids)".to_string(),
        },
        date_utc: "2025-01-02 03:04 UTC".to_string(),
        command: "bulkhead-bench --out docs/benchmarks.md".to_string(),
        cold: ColdStarts {
            bulkhead: samples(cold_us.0),
            bwrap: samples(cold_us.1),
        },
        warm: WarmLatency {
            bulkhead: samples(warm_us.0),
            direct: samples(warm_us.1),
        },
        throughput: vec![Throughput {
            clients: 16,
            apps: 4,
            calls: 30_000,
            errors: 2,
            first_error: None,
        }],
        memory: MemoryUse {
            hub_kib: 10 * 1024,
            spoke_kib: 7 * 1024,
            app_kib: 5 * 1024,
            spokes_running: 15,
            spoke_cgroup_bytes: 3 << 20,
        },
        egress: crate::egress::EgressFigures {
            proxied_mb_s: 900.0,
            direct_mb_s: 1000.0,
            proxied_setup: samples(&[300, 310, 400]),
            direct_setup: samples(&[100, 110, 120]),
        },
        runtime: Duration::from_millis(12_300),
    }
}

#[test]
fn egress_section_rendered() {
    let report = report((&[1000], &[1000]), (&[100], &[100]));
    let page = report.to_markdown();
    assert!(page.contains("## Egress through the proxy"), "{page}");
    assert!(page.contains("| Throughput (MB/s) | 900 | 1000 | 0.90 (goal ≥ 0.8: met) |"), "{page}");
    assert!(page.contains("| Connection setup p50 (µs) | 310 | 110 | 2.8 |"), "{page}");
}

#[test]
fn goals_met() {
    let report = report(
        (&[8000, 9000, 10_000], &[10_000, 12_000, 14_000]),
        (&[200, 250, 900], &[50, 60, 70]),
    );
    assert!(report.cold_goal_met());
    assert!(report.warm_goal_met());
    let page = report.to_markdown();
    assert!(
        page.contains(
            "| Cold start no slower than bubblewrap's (median ratio ≤ 1.0) | 0.75 (9.0 ms / 12.0 ms) | yes |"
        ),
        "{page}"
    );
    assert!(
        page.contains("| Warm call p50 ≤ 300 µs | 250 µs | yes |"),
        "{page}"
    );
    assert!(
        page.contains("The cold start goal is met: the median spoke start took 9.0 ms, 0.75 times"),
        "{page}"
    );
    assert!(page.contains("The warm call goal is met"), "{page}");
}

#[test]
fn goals_not_met() {
    let report = report((&[20_000], &[10_000]), (&[301], &[50]));
    assert!(!report.cold_goal_met());
    assert!(!report.warm_goal_met());
    let page = report.to_markdown();
    assert!(
        page.contains("| 2.00 (20.0 ms / 10.0 ms) | **no** |"),
        "{page}"
    );
    assert!(
        page.contains("| Warm call p50 ≤ 300 µs | 301 µs | **no** |"),
        "{page}"
    );
    assert!(page.contains("The cold start goal is not met"), "{page}");
    assert!(page.contains("The warm call goal is not met"), "{page}");
}

#[test]
fn ratio_exactly_one_meets_cold_goal() {
    let report = report((&[10_000], &[10_000]), (&[300], &[50]));
    assert!(report.cold_goal_met());
    assert!(report.warm_goal_met());
}

#[test]
fn page_lists_machine_and_rerun_command() {
    let page = report((&[1000], &[1000]), (&[100], &[50])).to_markdown();
    assert!(page.starts_with("# Benchmarks\n"), "{page}");
    assert!(page.contains("```sh\nmake bench\n```"), "{page}");
    assert!(page.contains("| Date | 2025-01-02 03:04 UTC |"), "{page}");
    assert!(
        page.contains("| Command | `bulkhead-bench --out docs/benchmarks.md` |"),
        "{page}"
    );
    assert!(page.contains("| CPU | Test CPU |"), "{page}");
    assert!(page.contains("| CPUs (`nproc`) | 2 |"), "{page}");
    assert!(page.contains("| Memory | 2048.0 MiB |"), "{page}");
    assert!(page.contains("| Kernel | 6.1.0-test |"), "{page}");
    assert!(
        page.contains("| cgroups | v2 (cgroup2 at /sys/fs/cgroup"),
        "{page}"
    );
    assert!(page.contains("| Bench runtime | 12.3 s |"), "{page}");
}

#[test]
fn page_tables_hold_figures() {
    let page = report(
        (&[8000, 9000, 10_000], &[4000, 5000, 6000]),
        (&[100, 200, 300], &[10, 20, 30]),
    )
    .to_markdown();

    assert!(
        page.contains("| bulkhead spoke (ListTools) | 3 | 9.0 ms | 8.0 ms | 10.0 ms |"),
        "{page}"
    );
    assert!(
        page.contains("| bubblewrap, same app | 3 | 5.0 ms | 4.0 ms | 6.0 ms |"),
        "{page}"
    );
    assert!(
        page.contains("Ratio of medians, bulkhead / bubblewrap: **1.80**"),
        "{page}"
    );

    assert!(
        page.contains("| through the hub and spoke | 3 | 200 µs | 300 µs | 300 µs |"),
        "{page}"
    );
    assert!(
        page.contains("| straight to the app | 3 | 20 µs | 30 µs | 30 µs |"),
        "{page}"
    );
    assert!(page.contains("p50 **10.00**, p99 **10.00**"), "{page}");

    assert!(page.contains("| 16 | 4 | 10000 | 2 |"), "{page}");

    assert!(page.contains("| bulkheadd | 10.0 MiB |"), "{page}");
    assert!(page.contains("with 15 spokes running"), "{page}");
    assert!(page.contains("charged 3.0 MiB"), "{page}");
}
