//! Egress through the hub's proxy: download throughput and connection setup time, each set against
//! the same download straight from the host in the same run.
//!
//! The bench starts an HTTP server on the host's 127.0.0.1 and an egress copy of the notes app
//! whose allowlist names that address. The proxied client runs on a thread that joins the spoke's
//! network namespace with setns, so it takes the app's path: the runtime's listener on
//! 127.0.0.1:3128, the hand-over of the socket to the hub, the hub's checks and relay. The direct
//! client runs the same code on a thread in the host's namespace.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::client::HubClient;
use crate::stats::Samples;

/// Name of the benchmark's egress app.
const APP: &str = "bench-egress";
/// The proxy's address inside the spoke's network namespace.
const PROXY: &str = "127.0.0.1:3128";
/// Size of the large download.
const DOWNLOAD_BYTES: usize = 64 << 20;
/// Large downloads per path.
const DOWNLOAD_RUNS: usize = 7;
/// Small requests per path for the setup time.
const SETUP_RUNS: usize = 300;
/// Upper bound of the whole section, so a stuck path cannot hang the bench.
const SECTION_DEADLINE: Duration = Duration::from_secs(120);
/// Socket timeout of every client read and write.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// Goal: the proxied download reaches at least this share of the direct throughput.
pub const THROUGHPUT_RATIO_GOAL: f64 = 0.8;

/// The figures of the egress section.
pub struct EgressFigures {
    pub proxied_mb_s: f64,
    pub direct_mb_s: f64,
    pub proxied_setup: Samples,
    pub direct_setup: Samples,
}

impl EgressFigures {
    pub fn throughput_ratio(&self) -> f64 {
        self.proxied_mb_s / self.direct_mb_s
    }

    /// Renders the section as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut page = String::new();
        page.push_str("## Egress through the proxy\n\n");
        let _ = writeln!(
            page,
            "An HTTP download of {} MiB from a server on the host's 127.0.0.1, through the egress proxy \
             (client in the spoke's network namespace, plain HTTP proxy request, relayed by the hub) and \
             straight from the host. Throughput is the median of {DOWNLOAD_RUNS} downloads per path. Setup \
             time is one small request on a new connection, from connect to the last byte of the answer, \
             over {SETUP_RUNS} requests per path.\n",
            DOWNLOAD_BYTES >> 20
        );
        page.push_str("| | Through the proxy | Direct | Ratio |\n|---|---|---|---|\n");
        let _ = writeln!(
            page,
            "| Throughput (MB/s) | {:.0} | {:.0} | {:.2} (goal ≥ {THROUGHPUT_RATIO_GOAL:.1}: {}) |",
            self.proxied_mb_s,
            self.direct_mb_s,
            self.throughput_ratio(),
            if self.throughput_ratio() >= THROUGHPUT_RATIO_GOAL { "met" } else { "not met" }
        );
        let micros = |samples: &Samples, percent| samples.percentile(percent).as_secs_f64() * 1e6;
        for (label, percent) in [("p50", 50), ("p99", 99)] {
            let proxied = micros(&self.proxied_setup, percent);
            let direct = micros(&self.direct_setup, percent);
            let _ = writeln!(
                page,
                "| Connection setup {label} (µs) | {proxied:.0} | {direct:.0} | {:.1} |",
                proxied / direct
            );
        }
        page.push('\n');
        page
    }
}

/// Registers and starts the egress app, then measures both paths alternately.
pub async fn measure(client: &mut HubClient) -> Result<EgressFigures> {
    let server = Server::start()?;
    let manifest = format!(
        "name = \"{APP}\"\n\
         description = \"Benchmark copy of the notes app with egress to the bench's server.\"\n\
         command = \"bulkhead-app-notes\"\n\
         [limits]\nmemory = \"64MiB\"\npids = 16\n\
         [network]\nmode = \"egress\"\nallow = [\"{}\"]\n",
        server.address
    );
    client.register_app(manifest).await?;
    client.list_tools(APP).await?;
    let spoke = client.running_spoke(APP).await?;
    let namespace = File::open(format!("/proc/{}/ns/net", spoke.pid))
        .with_context(|| format!("failed to open the network namespace of spoke pid {}", spoke.pid))?;

    let address = server.address;
    let figures = tokio::task::spawn_blocking(move || run_paths(address, &namespace))
        .await
        .map_err(|error| anyhow!("the egress measurement thread failed: {error}"))??;
    drop(server);
    eprintln!(
        "bench: egress throughput {:.0} MB/s proxied, {:.0} MB/s direct, ratio {:.2}",
        figures.proxied_mb_s,
        figures.direct_mb_s,
        figures.throughput_ratio()
    );
    Ok(figures)
}

/// Runs both paths in alternation, so that both see the same load on a shared machine: the proxied
/// one on a worker thread inside the spoke's namespace, the direct one on this thread.
fn run_paths(server: SocketAddr, namespace: &File) -> Result<EgressFigures> {
    let deadline = Instant::now() + SECTION_DEADLINE;
    let namespace = namespace.try_clone().context("failed to duplicate the namespace descriptor")?;
    let (requests, worker_requests) = mpsc::channel::<&'static str>();
    let (worker_results, results) = mpsc::channel::<Result<Duration>>();
    let worker = std::thread::spawn(move || {
        if let Err(error) = nix::sched::setns(&namespace, nix::sched::CloneFlags::CLONE_NEWNET) {
            let _ = worker_results.send(Err(anyhow!("failed to join the spoke's network namespace: {error}")));
            return;
        }
        for resource in worker_requests {
            let _ = worker_results.send(timed_fetch(&Path::Proxied(server), resource));
        }
    });
    let proxied = |resource: &'static str| -> Result<Duration> {
        requests.send(resource).map_err(|_| anyhow!("the proxied client thread stopped"))?;
        results.recv().map_err(|_| anyhow!("the proxied client thread stopped"))?
    };
    let direct = |resource: &'static str| timed_fetch(&Path::Direct(server), resource);

    let rate = |elapsed: Duration| DOWNLOAD_BYTES as f64 / 1e6 / elapsed.as_secs_f64();
    let (mut proxied_rates, mut direct_rates) = (Vec::new(), Vec::new());
    for _ in 0..DOWNLOAD_RUNS {
        proxied_rates.push(rate(proxied("/large")?));
        direct_rates.push(rate(direct("/large")?));
    }
    let (mut proxied_setup, mut direct_setup) = (Vec::new(), Vec::new());
    for _ in 0..SETUP_RUNS {
        if Instant::now() > deadline {
            eprintln!("bench: the egress section passed {SECTION_DEADLINE:?}; stopping early");
            break;
        }
        proxied_setup.push(proxied("/small")?);
        direct_setup.push(direct("/small")?);
    }
    drop(requests);
    let _ = worker.join();

    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    Ok(EgressFigures {
        proxied_mb_s: median(proxied_rates),
        direct_mb_s: median(direct_rates),
        proxied_setup: Samples::new(proxied_setup).ok_or_else(|| anyhow!("no proxied setup samples"))?,
        direct_setup: Samples::new(direct_setup).ok_or_else(|| anyhow!("no direct setup samples"))?,
    })
}

/// The route from a client to the server.
enum Path {
    /// Through the proxy, with the server's address in an absolute URL.
    Proxied(SocketAddr),
    Direct(SocketAddr),
}

impl Path {
    fn request(&self, resource: &str) -> (SocketAddr, String) {
        match self {
            Path::Proxied(server) => (
                PROXY.parse().unwrap_or(*server),
                format!("GET http://{server}{resource} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n"),
            ),
            Path::Direct(server) => (
                *server,
                format!("GET {resource} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n"),
            ),
        }
    }
}

/// Fetches `resource` and returns the time from connect to the last byte. A download of
/// `/large` that returns less than its body fails.
fn timed_fetch(path: &Path, resource: &str) -> Result<Duration> {
    let started = Instant::now();
    let bytes = fetch(path, resource)?;
    let elapsed = started.elapsed();
    if resource == "/large" && bytes < DOWNLOAD_BYTES {
        bail!("the download returned {bytes} bytes, fewer than the {DOWNLOAD_BYTES} body bytes");
    }
    Ok(elapsed)
}

/// Sends one request, reads the response to the end, and returns its size in bytes.
fn fetch(path: &Path, resource: &str) -> Result<usize> {
    let (address, request) = path.request(resource);
    let mut stream = TcpStream::connect(address).with_context(|| format!("failed to connect to {address}"))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(request.as_bytes())?;
    let mut buffer = vec![0u8; 256 * 1024];
    let mut total = 0;
    let mut head = Vec::new();
    loop {
        let count = stream.read(&mut buffer).with_context(|| format!("failed to read from {address}"))?;
        if count == 0 {
            break;
        }
        if total == 0 {
            head.extend_from_slice(&buffer[..count.min(64)]);
        }
        total += count;
    }
    if !head.starts_with(b"HTTP/1.1 200") {
        bail!("{resource} returned the unexpected response {:?}", String::from_utf8_lossy(&head));
    }
    Ok(total)
}

/// A minimal HTTP server on 127.0.0.1 that returns DOWNLOAD_BYTES for `/large` and one byte for
/// anything else, then closes. Dropping it stops its thread.
struct Server {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start() -> Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0").context("failed to listen on 127.0.0.1")?;
        let address = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let body = Arc::new(vec![b'x'; DOWNLOAD_BYTES]);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::Acquire) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let body = Arc::clone(&body);
                std::thread::spawn(move || {
                    let _ = answer(stream, &body);
                });
            }
        });
        Ok(Server { address, stop })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the accept loop so that it reads the flag.
        let _ = TcpStream::connect(self.address);
    }
}

fn answer(mut stream: TcpStream, body: &[u8]) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let count = stream.read(&mut byte)?;
        if count == 0 {
            return Ok(());
        }
        head.extend_from_slice(&byte[..count]);
    }
    let payload: &[u8] = if head.starts_with(b"GET /large ") { body } else { b"x" };
    let header = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", payload.len());
    stream.write_all(header.as_bytes())?;
    stream.write_all(payload)?;
    Ok(())
}
