//! hub.toml as serde reads it, and its validation into [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::group::{lookup_group, GROUP_FILE};
use super::{AuditConfig, Config, PathsConfig, SandboxConfig, ServerConfig, SpokesConfig};
use crate::manifest::paths::{absolute_normalized, is_root, under_any};
use crate::manifest::validate::{check_range, invalid, show_duration, Invalid};
use crate::flow::{AllowRule, FlowConfig, FlowRules};
use crate::units::{format_size, parse_duration, parse_size};

/// Ids below 65536 are the host's own users and groups.
const MIN_UID_BASE: i64 = 65_536;
/// 4294967295 is (uid_t)-1, which the kernel reserves, so the last usable id is one below it.
const MAX_UID_END: i64 = 4_294_967_294;
/// Below 1 MiB the tmpfs is too small to be useful. Zero would mean no limit at all.
const MIN_TMP_SIZE: u64 = 1 << 20;
const MAX_TMP_SIZE: u64 = 1 << 40;
/// Upper bound of every duration, which keeps `Instant + duration` far from overflow.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
const MIN_START_TIMEOUT: Duration = Duration::from_millis(100);
const MIN_BACKOFF: Duration = Duration::from_millis(1);
/// A shorter wait gives an approver no time to read the request.
const MIN_APPROVAL_TIMEOUT: Duration = Duration::from_millis(100);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    paths: RawPaths,
    #[serde(default)]
    spokes: RawSpokes,
    #[serde(default)]
    sandbox: RawSandbox,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    flow: RawFlow,
    #[serde(default)]
    egress: super::egress::RawEgress,
    #[serde(default)]
    llm: super::llm::RawLlm,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    confidential_rule: Option<bool>,
    verbatim_rule: Option<bool>,
    approval_timeout: Option<String>,
    #[serde(default)]
    allow: Vec<RawAllow>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllow {
    principal: Option<String>,
    source: Option<String>,
    target: Option<String>,
    tool: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    record_arguments: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    socket: Option<String>,
    socket_group: Option<String>,
    tcp: Option<String>,
    token_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPaths {
    apps: Option<String>,
    state: Option<String>,
    spoke: Option<String>,
    app_bin: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpokes {
    idle_timeout: Option<String>,
    start_timeout: Option<String>,
    stop_grace: Option<String>,
    restart_backoff: Option<String>,
    restart_backoff_max: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSandbox {
    uid_base: Option<i64>,
    uid_count: Option<i64>,
    tmp_size: Option<String>,
    system_paths: Option<Vec<String>>,
}

/// Checks every value, fills in defaults and resolves relative paths against `base`.
pub(super) fn validate(raw: RawConfig, base: &Path) -> Result<Config, Invalid> {
    Ok(Config {
        server: check_server(raw.server, base)?,
        paths: check_paths(raw.paths, base)?,
        spokes: check_spokes(raw.spokes)?,
        sandbox: check_sandbox(raw.sandbox)?,
        audit: AuditConfig { record_arguments: raw.audit.record_arguments.unwrap_or(false) },
        flow: check_flow(raw.flow)?,
        egress: super::egress::check_egress(raw.egress)?,
        llm: super::llm::check_llm(raw.llm)?,
    })
}

fn check_flow(raw: RawFlow) -> Result<FlowConfig, Invalid> {
    let rules = FlowRules {
        confidential: raw.confidential_rule.unwrap_or(true),
        verbatim: raw.verbatim_rule.unwrap_or(true),
    };
    let mut allow = Vec::with_capacity(raw.allow.len());
    for (index, rule) in raw.allow.into_iter().enumerate() {
        let rule = AllowRule {
            principal: rule.principal.unwrap_or_default(),
            source: rule.source.unwrap_or_default(),
            target: rule.target.unwrap_or_default(),
            tool: rule.tool.unwrap_or_default(),
        };
        if rule.source.is_empty() && rule.target.is_empty() {
            return Err(invalid(
                format!("flow.allow[{index}]"),
                "a rule needs source or target; add a line such as target = \"notes\"",
            ));
        }
        allow.push(rule);
    }
    let approval_timeout = match raw.approval_timeout {
        Some(text) => check_duration("flow.approval_timeout", &text, MIN_APPROVAL_TIMEOUT)?,
        None => FlowConfig::default().approval_timeout,
    };
    Ok(FlowConfig { rules, allow, approval_timeout })
}

fn check_server(raw: RawServer, base: &Path) -> Result<ServerConfig, Invalid> {
    let defaults = ServerConfig::default();
    let socket = match raw.socket {
        Some(text) => required_path("server.socket", &text, base)?,
        None => defaults.socket,
    };
    let socket_gid = non_empty(raw.socket_group)
        .map(|text| check_group(&text, Path::new(GROUP_FILE)))
        .transpose()?;
    let tcp = non_empty(raw.tcp)
        .map(|text| check_tcp(&text))
        .transpose()?;
    let token_file = non_empty(raw.token_file)
        .map(|text| required_path("server.token_file", &text, base))
        .transpose()?;

    if tcp.is_some() && token_file.is_none() {
        return Err(invalid(
            "server.tcp",
            "TCP needs a token: set server.token_file to a file that holds the bearer token, or \
             set tcp = \"\" to serve only the Unix socket",
        ));
    }
    Ok(ServerConfig {
        socket,
        socket_gid,
        tcp,
        token_file,
    })
}

/// Turns a group name or numeric gid into a gid, looking names up in `group_file`.
pub(super) fn check_group(text: &str, group_file: &Path) -> Result<u32, Invalid> {
    const KEY: &str = "server.socket_group";
    if text.chars().all(|c| c.is_ascii_digit()) {
        return text.parse().map_err(|_| {
            invalid(
                KEY,
                format!("gid {text} is above the maximum of {}", u32::MAX),
            )
        });
    }
    let valid_chars = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid_chars || text.starts_with('-') {
        return Err(invalid(
            KEY,
            format!(
                "invalid group {text:?}: use a group name of letters, digits, _, - and ., or a \
                 numeric gid"
            ),
        ));
    }
    lookup_group(text, group_file).map_err(|reason| invalid(KEY, reason))
}

fn check_tcp(text: &str) -> Result<SocketAddr, Invalid> {
    text.trim().parse().map_err(|_| {
        invalid(
            "server.tcp",
            format!(
                "invalid address \"{text}\": use an IP address and a port such as \
                 \"127.0.0.1:7443\", because host names are not resolved"
            ),
        )
    })
}

fn check_paths(raw: RawPaths, base: &Path) -> Result<PathsConfig, Invalid> {
    let defaults = PathsConfig::default();
    let apps = match raw.apps {
        Some(text) => required_path("paths.apps", &text, base)?,
        None => defaults.apps,
    };
    let state = match raw.state {
        Some(text) => required_path("paths.state", &text, base)?,
        None => defaults.state,
    };
    let spoke = non_empty(raw.spoke)
        .map(|text| required_path("paths.spoke", &text, base))
        .transpose()?
        .unwrap_or_default();
    let app_bin = non_empty(raw.app_bin)
        .map(|text| required_path("paths.app_bin", &text, base))
        .transpose()?
        .unwrap_or_default();
    Ok(PathsConfig {
        apps,
        state,
        spoke,
        app_bin,
    })
}

fn check_spokes(raw: RawSpokes) -> Result<SpokesConfig, Invalid> {
    let defaults = SpokesConfig::default();
    let duration = |key: &str, text: Option<String>, default: Duration, min: Duration| match text {
        Some(text) => check_duration(key, &text, min),
        None => Ok(default),
    };

    let idle_timeout = match raw.idle_timeout {
        Some(text) => check_duration("spokes.idle_timeout", &text, Duration::ZERO)?,
        None => defaults.idle_timeout,
    };
    let spokes = SpokesConfig {
        idle_timeout,
        start_timeout: duration(
            "spokes.start_timeout",
            raw.start_timeout,
            defaults.start_timeout,
            MIN_START_TIMEOUT,
        )?,
        stop_grace: duration(
            "spokes.stop_grace",
            raw.stop_grace,
            defaults.stop_grace,
            Duration::ZERO,
        )?,
        restart_backoff: duration(
            "spokes.restart_backoff",
            raw.restart_backoff,
            defaults.restart_backoff,
            MIN_BACKOFF,
        )?,
        restart_backoff_max: duration(
            "spokes.restart_backoff_max",
            raw.restart_backoff_max,
            defaults.restart_backoff_max,
            MIN_BACKOFF,
        )?,
    };

    if spokes.restart_backoff_max < spokes.restart_backoff {
        return Err(invalid(
            "spokes.restart_backoff_max",
            format!(
                "{} is below restart_backoff ({}); raise it or lower restart_backoff",
                show_duration(spokes.restart_backoff_max),
                show_duration(spokes.restart_backoff)
            ),
        ));
    }
    Ok(spokes)
}

pub(super) fn check_duration(key: &str, text: &str, min: Duration) -> Result<Duration, Invalid> {
    let duration = parse_duration(text).map_err(|error| invalid(key, error.to_string()))?;
    check_range(key, duration, min, MAX_DURATION, show_duration)
}

fn check_sandbox(raw: RawSandbox) -> Result<SandboxConfig, Invalid> {
    let defaults = SandboxConfig::default();
    let uid_base = raw.uid_base.unwrap_or(i64::from(defaults.uid_base));
    let uid_count = raw.uid_count.unwrap_or(i64::from(defaults.uid_count));
    let uid_base = check_range(
        "sandbox.uid_base",
        uid_base,
        MIN_UID_BASE,
        MAX_UID_END - 1,
        |n| n.to_string(),
    )?;
    let uid_count = check_range("sandbox.uid_count", uid_count, 1, MAX_UID_END, |n| {
        n.to_string()
    })?;
    if uid_base + uid_count > MAX_UID_END {
        return Err(invalid(
            "sandbox.uid_count",
            format!(
                "uid_base + uid_count is {}, above the maximum of {MAX_UID_END}; lower uid_base \
                 or uid_count",
                uid_base + uid_count
            ),
        ));
    }

    let tmp_size_bytes = match raw.tmp_size {
        Some(text) => {
            let bytes = parse_size(&text)
                .map_err(|error| invalid("sandbox.tmp_size", error.to_string()))?;
            check_range(
                "sandbox.tmp_size",
                bytes,
                MIN_TMP_SIZE,
                MAX_TMP_SIZE,
                format_size,
            )?
        }
        None => defaults.tmp_size_bytes,
    };
    let system_paths = match raw.system_paths {
        Some(paths) => check_system_paths(&paths)?,
        None => defaults.system_paths,
    };

    Ok(SandboxConfig {
        uid_base: to_u32(uid_base),
        uid_count: to_u32(uid_count),
        tmp_size_bytes,
        system_paths,
    })
}

/// Converts an id that the range checks above have already bounded to 0..=4294967294.
fn to_u32(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

fn check_system_paths(paths: &[String]) -> Result<Vec<PathBuf>, Invalid> {
    let mut checked: Vec<PathBuf> = Vec::with_capacity(paths.len());
    for (index, text) in paths.iter().enumerate() {
        let key = format!("sandbox.system_paths[{index}]");
        let path = absolute_normalized(text).map_err(|reason| invalid(&key, reason))?;
        if is_root(&path) {
            return Err(invalid(
                &key,
                "\"/\" would show the whole host; list folders such as /usr",
            ));
        }
        if let Some(root) = under_any(&path, &["/proc", "/dev", "/sys"]) {
            return Err(invalid(
                &key,
                format!("\"{text}\" is under the host's {root}, which the sandbox never binds"),
            ));
        }
        if checked.contains(&path) {
            return Err(invalid(
                &key,
                format!("\"{text}\" is listed twice; list it once"),
            ));
        }
        checked.push(path);
    }
    Ok(checked)
}

/// Returns None for an absent or empty string, which the config uses for "not set".
fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|text| !text.is_empty())
}

/// Parses a path that must not be empty, resolving a relative one against `base`.
fn required_path(key: &str, text: &str, base: &Path) -> Result<PathBuf, Invalid> {
    if text.is_empty() {
        return Err(invalid(
            key,
            "is empty; name a path, or remove the line to use the default",
        ));
    }
    if text.contains('\0') {
        return Err(invalid(key, format!("{text:?} contains a NUL byte")));
    }
    Ok(base.join(text))
}
