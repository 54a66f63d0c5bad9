//! Cold starts: the first ListTools of a freshly registered app, which starts its spoke, against
//! the same app started under bubblewrap and driven over stdio up to its tools/list response.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tokio::process::Command;

use crate::client::HubClient;
use crate::mcp::McpChild;
use crate::stats::Samples;

/// Cold starts measured for each of bulkhead and bubblewrap.
pub const COLD_RUNS: usize = 15;

/// Time after which no further cold start begins.
const PHASE_DEADLINE: Duration = Duration::from_secs(60);

/// The tool whose presence shows that a catalog is the notes app's.
pub const PROBE_TOOL: &str = "list_notes";

/// Top-level host paths that bubblewrap recreates in the sandbox as the host has them.
const ROOT_LINKS: [&str; 4] = ["/lib", "/lib64", "/bin", "/sbin"];

/// Inputs of the cold-start phase.
pub struct ColdSetup<'a> {
    pub bwrap: &'a Path,
    pub notes_binary: &'a Path,
    /// Folder for the bubblewrap runs' fresh state directories.
    pub scratch: &'a Path,
}

/// Start times of the app under the hub and under bubblewrap, from the same runs.
pub struct ColdStarts {
    pub bulkhead: Samples,
    pub bwrap: Samples,
}

/// Returns the name of the i-th benchmark app.
pub fn app_name(index: usize) -> String {
    format!("bench-cold-{index}")
}

/// Returns a manifest for a copy of the notes app named `name`.
pub fn notes_manifest(name: &str) -> String {
    format!(
        "name = \"{name}\"\n\
         description = \"Benchmark copy of the notes app.\"\n\
         command = \"bulkhead-app-notes\"\n\
         [state]\npersistent = true\n\
         [limits]\nmemory = \"64MiB\"\npids = 16\n"
    )
}

/// Runs the bulkhead and bubblewrap cold starts alternately, so that both see the same load.
pub async fn measure(client: &mut HubClient, setup: &ColdSetup<'_>) -> Result<ColdStarts> {
    let phase_start = Instant::now();
    let mut bulkhead = Vec::with_capacity(COLD_RUNS);
    let mut bwrap = Vec::with_capacity(COLD_RUNS);

    for index in 1..=COLD_RUNS {
        if phase_start.elapsed() > PHASE_DEADLINE {
            eprintln!(
                "bench: cold starts passed {PHASE_DEADLINE:?}; stopping after {} runs",
                index - 1
            );
            break;
        }
        let hub_time = start_in_hub(client, &app_name(index)).await?;
        let bwrap_time = start_in_bwrap(setup, index).await?;
        eprintln!(
            "bench: cold start {index}/{COLD_RUNS}: bulkhead {:.1} ms, bwrap {:.1} ms",
            hub_time.as_secs_f64() * 1e3,
            bwrap_time.as_secs_f64() * 1e3
        );
        bulkhead.push(hub_time);
        bwrap.push(bwrap_time);
    }

    Ok(ColdStarts {
        bulkhead: Samples::new(bulkhead).ok_or_else(|| anyhow!("no cold start was measured"))?,
        bwrap: Samples::new(bwrap).ok_or_else(|| anyhow!("no bubblewrap start was measured"))?,
    })
}

/// Registers `app` and times its first ListTools.
async fn start_in_hub(client: &mut HubClient, app: &str) -> Result<Duration> {
    client.register_app(notes_manifest(app)).await?;
    let spokes = client.list_spokes().await?;
    if spokes
        .iter()
        .any(|spoke| spoke.app == app && spoke.pid != 0)
    {
        bail!("the hub started a spoke for {app} at registration, so ListTools would not be a cold start");
    }

    let started = Instant::now();
    let tools = client.list_tools(app).await?;
    let elapsed = started.elapsed();
    if !tools.iter().any(|tool| tool.name == PROBE_TOOL) {
        bail!("ListTools({app}) returned no {PROBE_TOOL} tool; the catalog is not the notes app's");
    }
    Ok(elapsed)
}

/// Times one bubblewrap run from spawn to the tools/list response, with a fresh state dir.
async fn start_in_bwrap(setup: &ColdSetup<'_>, index: usize) -> Result<Duration> {
    let state_dir = setup.scratch.join(format!("bwrap-state-{index}"));
    fs::create_dir(&state_dir)
        .with_context(|| format!("failed to create {}", state_dir.display()))?;
    let roots = ROOT_LINKS.map(|path| (PathBuf::from(path), HostEntry::inspect(Path::new(path))));
    let mut command = Command::new(setup.bwrap);
    command.args(bwrap_args(&roots, &state_dir, setup.notes_binary));

    let started = Instant::now();
    let mut app = McpChild::spawn("notes app under bwrap", command)?;
    app.initialize().await?;
    let tools = app.list_tools().await?;
    let elapsed = started.elapsed();
    app.stop().await;

    if !tools.iter().any(|name| name == PROBE_TOOL) {
        bail!("the notes app under bwrap listed no {PROBE_TOOL} tool");
    }
    Ok(elapsed)
}

/// Kind of a top-level host path, so that the sandbox can mirror it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostEntry {
    Symlink(PathBuf),
    Directory,
    Missing,
}

impl HostEntry {
    fn inspect(path: &Path) -> HostEntry {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                fs::read_link(path).map_or(HostEntry::Missing, HostEntry::Symlink)
            }
            Ok(meta) if meta.is_dir() => HostEntry::Directory,
            _ => HostEntry::Missing,
        }
    }
}

/// Builds the bwrap arguments: every namespace unshared, /usr read-only, the top-level links as
/// the host has them, fresh /proc, /dev and /tmp, the state dir at /state and the app at
/// /app/notes.
fn bwrap_args(
    roots: &[(PathBuf, HostEntry)],
    state_dir: &Path,
    notes_binary: &Path,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    .map(OsString::from)
    .to_vec();
    for (path, entry) in roots {
        match entry {
            HostEntry::Symlink(target) => {
                args.extend([OsString::from("--symlink"), target.into(), path.into()]);
            }
            HostEntry::Directory => {
                args.extend([OsString::from("--ro-bind"), path.into(), path.into()])
            }
            HostEntry::Missing => {}
        }
    }
    args.extend(
        [
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--bind",
        ]
        .map(OsString::from),
    );
    args.extend([state_dir.into(), OsString::from("/state")]);
    args.extend(["--setenv", "BULKHEAD_STATE_DIR", "/state", "--ro-bind"].map(OsString::from));
    args.extend([
        notes_binary.into(),
        OsString::from("/app/notes"),
        OsString::from("/app/notes"),
    ]);
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn bwrap_args_mirror_host_root() {
        let roots = [
            (
                PathBuf::from("/lib"),
                HostEntry::Symlink(PathBuf::from("usr/lib")),
            ),
            (PathBuf::from("/lib64"), HostEntry::Missing),
            (PathBuf::from("/bin"), HostEntry::Directory),
        ];
        let args = strings(&bwrap_args(
            &roots,
            Path::new("/tmp/s1"),
            Path::new("/opt/notes"),
        ));
        let expected = [
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--ro-bind",
            "/usr",
            "/usr",
            "--symlink",
            "usr/lib",
            "/lib",
            "--ro-bind",
            "/bin",
            "/bin",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            "--bind",
            "/tmp/s1",
            "/state",
            "--setenv",
            "BULKHEAD_STATE_DIR",
            "/state",
            "--ro-bind",
            "/opt/notes",
            "/app/notes",
            "/app/notes",
        ];
        assert_eq!(args, expected);
    }

    #[test]
    fn host_entry_kinds() {
        let dir = tempfile::tempdir().expect("temp dir");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("usr/lib", &link).expect("symlink");
        assert_eq!(
            HostEntry::inspect(&link),
            HostEntry::Symlink(PathBuf::from("usr/lib"))
        );
        assert_eq!(HostEntry::inspect(dir.path()), HostEntry::Directory);
        assert_eq!(
            HostEntry::inspect(&dir.path().join("absent")),
            HostEntry::Missing
        );
    }

    #[test]
    fn manifest_names_the_app() {
        let text = notes_manifest("bench-cold-3");
        assert!(text.starts_with("name = \"bench-cold-3\"\n"), "{text}");
        assert!(text.contains("command = \"bulkhead-app-notes\""), "{text}");
        assert!(
            text.contains("[limits]\nmemory = \"64MiB\"\npids = 16\n"),
            "{text}"
        );
        assert_eq!(app_name(3), "bench-cold-3");
    }
}
