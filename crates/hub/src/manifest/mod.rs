//! App manifests: one TOML file per app, naming its command, mounts, limits and tools.
//!
//! Parsing has two steps. serde reads the text into raw structs that reject unknown keys, and
//! validation turns those into [`Manifest`], checking every value and filling in defaults. Each
//! error names the file, the key and the reason, and the fix where that is not obvious.

mod limits;
mod network;
pub(crate) mod paths;
mod raw;
pub(crate) mod source;
pub(crate) mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

pub use limits::{DEFAULT_CALL_TIMEOUT, DEFAULT_CPU_MILLIS, DEFAULT_MEMORY_BYTES, DEFAULT_PIDS};
pub use source::{DiagnosticKind, TomlDiagnostic, MAX_FILE_BYTES};
pub use validate::DEFAULT_CWD;

/// A validated app manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Unique app name: 1 to 63 characters from a-z, 0-9, _ and -, starting with a letter or digit.
    pub name: String,
    /// Text for the planner and for people, approved by the operator with the manifest.
    pub description: String,
    /// An absolute path inside the sandbox, or a bare file name without `/`.
    pub command: String,
    pub args: Vec<String>,
    /// Absolute working directory inside the sandbox, never under /proc, /dev or /sys.
    pub cwd: PathBuf,
    /// The app's whole environment, because the app inherits none.
    pub env: BTreeMap<String, String>,
    pub mounts: Vec<MountEntry>,
    pub state: StateConfig,
    pub limits: LimitsConfig,
    pub network: NetworkConfig,
    pub tools: ToolsConfig,
    pub data: DataConfig,
}

/// A bind mount of a host path into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Absolute host path, never `/` and never under the host's /proc, /dev or /sys.
    pub source: PathBuf,
    /// Absolute sandbox path, never `/`, /etc, or under /proc, /dev, /sys, /tmp, /state or /app.
    pub target: PathBuf,
    pub writable: bool,
}

/// The app's private /state folder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateConfig {
    /// True keeps /state across restarts; false gives the app a fresh tmpfs each start.
    pub persistent: bool,
}

/// Kernel-enforced resource limits for the app's spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Memory limit in bytes, from 8 MiB to 1 TiB.
    pub memory_bytes: u64,
    /// Maximum number of processes and threads, from 1 to 65536.
    pub pids: u64,
    /// CPU share in thousandths of a CPU, from 1 to 64000.
    pub cpu_millis: u32,
    /// Time one tool call may take, from 100ms to 1h.
    pub call_timeout: Duration,
}

/// The app's network access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    pub mode: NetworkMode,
    /// The hosts and ports the app may reach through the hub's proxy, in egress mode. Empty in
    /// mode "none".
    pub allow: Vec<crate::egress::allowlist::AllowEntry>,
    /// Maximum number of proxy connections open at once, from 1 to 4096.
    pub max_connections: u32,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig { mode: NetworkMode::None, allow: Vec::new(), max_connections: DEFAULT_MAX_CONNECTIONS }
    }
}

/// The default of `[network] max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 32;

/// How much network the app gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// An empty network namespace with only a loopback interface.
    #[default]
    None,
    /// The same namespace, plus the hub's proxy on 127.0.0.1 to the hosts on the allowlist.
    Egress,
}

impl NetworkMode {
    /// Reports whether the app can send traffic beyond its own network namespace.
    pub fn has_egress(self) -> bool {
        match self {
            NetworkMode::None => false,
            NetworkMode::Egress => true,
        }
    }

    /// Returns the mode as written in a manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::None => "none",
            NetworkMode::Egress => "egress",
        }
    }
}

/// How the hub treats the data the app returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DataConfig {
    /// The app's results are confidential, so a session that read them needs a decision before
    /// it calls a destructive tool or an app with network egress.
    pub confidential: bool,
}

/// The tools agents may call, and those whose calls change the outside world.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolsConfig {
    /// The tools agents may call, or `None` for every tool the app lists.
    pub expose: Option<Vec<String>>,
    /// Tools whose calls change the outside world. Each is also in `expose` when that is set.
    pub destructive: Vec<String>,
}

/// Errors from reading, parsing or validating manifests.
#[derive(Debug, Error)]
pub enum ManifestError {
    #[error("{path}: failed to read the manifest: {source}")]
    Read { path: PathBuf, source: io::Error },

    #[error("{path}: failed to list the manifest folder: {source}")]
    ReadDir { path: PathBuf, source: io::Error },

    #[error("{path}: {diagnostic}")]
    Parse {
        path: PathBuf,
        diagnostic: TomlDiagnostic,
    },

    #[error("{path}: {key}: {reason}")]
    Invalid {
        path: PathBuf,
        key: String,
        reason: String,
    },

    #[error("{path}: name \"{name}\" is already used by {first}; give each app a unique name")]
    DuplicateName {
        path: PathBuf,
        name: String,
        first: PathBuf,
    },
}

impl Manifest {
    /// Parses and validates manifest text. `origin` names the text in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Manifest, ManifestError> {
        let raw: raw::RawManifest = toml::from_str(text).map_err(|error| ManifestError::Parse {
            path: origin.to_path_buf(),
            diagnostic: TomlDiagnostic::new(&error, text),
        })?;
        validate::validate(raw).map_err(|problem| ManifestError::Invalid {
            path: origin.to_path_buf(),
            key: problem.key,
            reason: problem.reason,
        })
    }

    /// Reads a manifest file of at most [`MAX_FILE_BYTES`], then parses and validates it.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = source::read_text_file(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Manifest::from_toml(&text, path)
    }

    /// Returns true when agents may call `tool`: it is in `tools.expose`, or that list is absent.
    pub fn is_exposed(&self, tool: &str) -> bool {
        match &self.tools.expose {
            Some(expose) => expose.iter().any(|name| name == tool),
            None => true,
        }
    }

    /// Returns true when the manifest lists `tool` in `tools.destructive`.
    pub fn is_destructive(&self, tool: &str) -> bool {
        self.tools.destructive.iter().any(|name| name == tool)
    }
}

/// Loads every `*.toml` file in `dir`, in file name order, skipping names that start with `.`.
///
/// Returns the manifests that loaded and the problems, each with its file. A manifest whose name
/// an earlier file already uses is a problem that names both files. When the folder itself cannot
/// be read, the only problem is a [`ManifestError::ReadDir`] for `dir`.
// The tuple of loaded manifests and problems is the interface the hub's registry expects.
#[allow(clippy::type_complexity)]
pub fn load_dir(dir: &Path) -> (Vec<(PathBuf, Manifest)>, Vec<(PathBuf, ManifestError)>) {
    let mut loaded: Vec<(PathBuf, Manifest)> = Vec::new();
    let mut problems = Vec::new();

    let paths = match manifest_paths(dir) {
        Ok(paths) => paths,
        Err(source) => {
            let error = ManifestError::ReadDir {
                path: dir.to_path_buf(),
                source,
            };
            problems.push((dir.to_path_buf(), error));
            return (loaded, problems);
        }
    };

    for path in paths {
        let manifest = match Manifest::load(&path) {
            Ok(manifest) => manifest,
            Err(error) => {
                problems.push((path, error));
                continue;
            }
        };
        match loaded.iter().find(|(_, other)| other.name == manifest.name) {
            Some((first, _)) => {
                let error = ManifestError::DuplicateName {
                    path: path.clone(),
                    name: manifest.name,
                    first: first.clone(),
                };
                problems.push((path, error));
            }
            None => loaded.push((path, manifest)),
        }
    }
    (loaded, problems)
}

/// Lists the manifest files of `dir`, sorted. Folders are skipped. A broken symlink is kept so
/// that loading it reports the problem.
fn manifest_paths(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let hidden = path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with('.'));
        let is_toml = path.extension().is_some_and(|ext| ext == "toml");
        let is_dir = std::fs::metadata(&path).is_ok_and(|metadata| metadata.is_dir());
        if is_toml && !hidden && !is_dir {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}
