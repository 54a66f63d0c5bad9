//! The hub's configuration file, hub.toml.
//!
//! Every key is optional and has a default. Unknown keys are rejected. Relative paths are
//! resolved against the folder that contains the config file. Errors name the file, the key, the
//! reason and the fix, in the same form as manifest errors.

mod egress;
mod group;
mod llm;
mod token;
mod validate;

#[cfg(test)]
mod tests;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

pub use llm::{LlmBackendKind, LlmConfig};

use crate::manifest::source::read_text_file;
use crate::manifest::TomlDiagnostic;

/// File name of the spoke runtime binary, looked up beside bulkheadd by default.
pub const SPOKE_BINARY_NAME: &str = "bulkhead-spoke";

/// The whole hub configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub server: ServerConfig,
    pub paths: PathsConfig,
    pub spokes: SpokesConfig,
    pub sandbox: SandboxConfig,
    pub audit: AuditConfig,
    pub flow: crate::flow::FlowConfig,
    pub llm: LlmConfig,
    pub egress: EgressConfig,
}

/// Settings of the egress proxy shared by every app with `[network] mode = "egress"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressConfig {
    /// Names pinned to addresses, in normalised form. The proxy dials these addresses without
    /// resolving the name and without the address class checks, because the operator chose them.
    pub hosts: std::collections::BTreeMap<String, Vec<std::net::IpAddr>>,
    /// Time for one name lookup, and for one TCP connect to each address.
    pub connect_timeout: Duration,
    /// Time an app has to send a request head after it opens a proxy connection.
    pub header_timeout: Duration,
}

impl Default for EgressConfig {
    fn default() -> Self {
        EgressConfig {
            hosts: std::collections::BTreeMap::new(),
            connect_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// What the audit log records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditConfig {
    /// Record call arguments in full instead of as a SHA-256 digest and size.
    pub record_arguments: bool,
}

/// The hub's listeners for agents and the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Unix socket path, created with mode 0660.
    pub socket: PathBuf,
    /// Gid of the group that owns the socket, or `None` to keep the hub's own group. The config
    /// names the group by name or number, and a name is looked up in /etc/group.
    pub socket_gid: Option<u32>,
    /// TCP address to serve as well. It is set only together with `token_file`.
    pub tcp: Option<SocketAddr>,
    /// File whose first line is the bearer token that TCP clients must send.
    pub token_file: Option<PathBuf>,
}

/// Folders and binaries the hub uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathsConfig {
    /// Folder of app manifests (`*.toml`).
    pub apps: PathBuf,
    /// The hub's state directory.
    pub state: PathBuf,
    /// The bulkhead-spoke binary. Empty until [`Config::resolve_binaries`] fills in the default
    /// when the config sets none.
    pub spoke: PathBuf,
    /// Folder searched for bare app commands. Empty until [`Config::resolve_binaries`] fills in
    /// the default when the config sets none.
    pub app_bin: PathBuf,
}

/// Timing of spoke starts, stops and restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpokesConfig {
    /// A spoke with no calls for this long is stopped. Zero keeps idle spokes running.
    pub idle_timeout: Duration,
    /// Time for the launch, the MCP handshake and tools/list together.
    pub start_timeout: Duration,
    /// Time between SIGTERM and SIGKILL when a spoke is stopped.
    pub stop_grace: Duration,
    /// Delay before the first restart after a crash. It doubles with each consecutive crash.
    pub restart_backoff: Duration,
    /// Upper bound of the doubling restart delay.
    pub restart_backoff_max: Duration,
}

/// Settings shared by every spoke's sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    /// Host uid and gid of the first app. The app with index i runs as `uid_base + i`.
    pub uid_base: u32,
    /// Number of host ids reserved for apps, so also the maximum number of apps.
    pub uid_count: u32,
    /// Size of each spoke's /tmp tmpfs in bytes.
    pub tmp_size_bytes: u64,
    /// Host paths bound read-only at the same place in every spoke.
    pub system_paths: Vec<PathBuf>,
}

/// Errors from reading or validating the hub config and the token file it names.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{path}: failed to read the hub config: {source}")]
    Read { path: PathBuf, source: io::Error },

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

    #[error("{path}: failed to read the token file: {source}")]
    TokenRead { path: PathBuf, source: io::Error },

    #[error(
        "{path}: the token file is readable by every user (mode {mode:o}); \
         run chmod o-r on it"
    )]
    TokenWorldReadable { path: PathBuf, mode: u32 },

    #[error("{path}: the token file's first line is empty; write the token on the first line")]
    TokenEmpty { path: PathBuf },

    #[error(
        "{path}: the token is {length} characters long, below the minimum of {min}; \
         write a longer random token, such as the output of `openssl rand -hex 32`",
        min = token::MIN_TOKEN_LEN
    )]
    TokenTooShort { path: PathBuf, length: usize },
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            socket: PathBuf::from("/run/bulkhead/hub.sock"),
            socket_gid: None,
            tcp: None,
            token_file: None,
        }
    }
}

impl Default for PathsConfig {
    fn default() -> Self {
        PathsConfig {
            apps: PathBuf::from("/etc/bulkhead/apps.d"),
            state: PathBuf::from("/var/lib/bulkhead"),
            spoke: PathBuf::new(),
            app_bin: PathBuf::new(),
        }
    }
}

impl Default for SpokesConfig {
    fn default() -> Self {
        SpokesConfig {
            idle_timeout: Duration::from_secs(300),
            start_timeout: Duration::from_secs(20),
            stop_grace: Duration::from_secs(1),
            restart_backoff: Duration::from_millis(250),
            restart_backoff_max: Duration::from_secs(30),
        }
    }
}

/// Host paths every spoke gets read-only: the system's programs, libraries, CA certificates,
/// dynamic loader cache, time zone and Debian alternatives links.
pub const DEFAULT_SYSTEM_PATHS: [&str; 9] = [
    "/usr",
    "/lib",
    "/lib64",
    "/bin",
    "/sbin",
    "/etc/ssl",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/alternatives",
];

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            uid_base: 2_000_000_000,
            uid_count: 65_536,
            tmp_size_bytes: 64 << 20,
            system_paths: DEFAULT_SYSTEM_PATHS.iter().map(PathBuf::from).collect(),
        }
    }
}

impl Config {
    /// Reads, parses and validates a hub config file of at most 1 MiB.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read_text_file(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// Parses and validates config text. `origin` names the text in errors, and relative paths
    /// are resolved against its folder, made absolute with the current directory if needed.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let raw: validate::RawConfig =
            toml::from_str(text).map_err(|error| ConfigError::Parse {
                path: origin.to_path_buf(),
                diagnostic: TomlDiagnostic::new(&error, text),
            })?;
        let base = config_folder(origin).map_err(|source| ConfigError::Read {
            path: origin.to_path_buf(),
            source,
        })?;
        validate::validate(raw, &base).map_err(|problem| ConfigError::Invalid {
            path: origin.to_path_buf(),
            key: problem.key,
            reason: problem.reason,
        })
    }

    /// Fills in the binaries left empty: `paths.spoke` becomes `exe_dir/bulkhead-spoke` and
    /// `paths.app_bin` becomes `exe_dir`, the folder that contains bulkheadd.
    pub fn resolve_binaries(&mut self, exe_dir: &Path) {
        if self.paths.spoke.as_os_str().is_empty() {
            self.paths.spoke = exe_dir.join(SPOKE_BINARY_NAME);
        }
        if self.paths.app_bin.as_os_str().is_empty() {
            self.paths.app_bin = exe_dir.to_path_buf();
        }
    }
}

impl ServerConfig {
    /// Reads the bearer token from `token_file`, or returns `None` when no token file is set.
    ///
    /// The file must be a regular file that other users cannot read. The token is its first
    /// line without surrounding whitespace, and has at least 16 characters.
    pub fn read_token(&self) -> Result<Option<String>, ConfigError> {
        match &self.token_file {
            Some(path) => token::read_token(path).map(Some),
            None => Ok(None),
        }
    }
}

/// Returns the absolute folder of the config file, for resolving relative paths.
fn config_folder(origin: &Path) -> io::Result<PathBuf> {
    let folder = origin.parent().unwrap_or(Path::new(""));
    if folder.is_absolute() {
        return Ok(folder.to_path_buf());
    }
    Ok(std::env::current_dir()?.join(folder))
}
