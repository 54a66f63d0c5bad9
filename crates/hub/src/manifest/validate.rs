//! Validation of a parsed manifest into typed fields, with defaults filled in.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use super::limits::check_limits;
use super::paths::{absolute_normalized, is_root, under_any};
use super::raw::{RawManifest, RawMount, RawTools};
use super::{Manifest, MountEntry, StateConfig, ToolsConfig};

/// The working directory of an app whose manifest sets none.
pub const DEFAULT_CWD: &str = "/state";

/// Maximum length of an app name.
const MAX_NAME_LEN: usize = 63;

/// Kernel interfaces that the sandbox builds itself and that a path from a manifest must not
/// name or bind over.
const KERNEL_ROOTS: [&str; 3] = ["/proc", "/dev", "/sys"];

/// Sandbox folders that no mount target may be at or beneath: /tmp is the sandbox's own tmpfs,
/// /state the app's state and /app the folder for commands from the hub's app binary folder.
const RESERVED_TARGET_ROOTS: [&str; 3] = ["/tmp", "/state", "/app"];

/// A key that failed validation and the reason, before the file name is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub key: String,
    pub reason: String,
}

pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// Checks every field of a parsed manifest and fills in the defaults.
pub(crate) fn validate(raw: RawManifest) -> Result<Manifest, Invalid> {
    let name = required("name", raw.name, "name = \"notes\"")?;
    let description = required(
        "description",
        raw.description,
        "description = \"Keeps short text notes.\"",
    )?;
    let command = required("command", raw.command, "command = \"/usr/bin/python3\"")?;

    Ok(Manifest {
        name: check_name(name)?,
        description: check_description(description)?,
        command: check_command(command)?,
        args: check_args(raw.args)?,
        cwd: check_cwd(raw.cwd)?,
        env: check_env(raw.env)?,
        mounts: check_mounts(raw.mounts)?,
        state: StateConfig {
            persistent: raw.state.persistent.unwrap_or(false),
        },
        limits: check_limits(raw.limits)?,
        network: super::network::check_network(raw.network)?,
        tools: check_tools(raw.tools)?,
        data: super::DataConfig { confidential: raw.data.confidential.unwrap_or(false) },
    })
}

fn required(key: &str, value: Option<String>, example: &str) -> Result<String, Invalid> {
    value.ok_or_else(|| invalid(key, format!("missing; add a line such as {example}")))
}

fn check_name(name: String) -> Result<String, Invalid> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if first_ok && rest_ok && name.len() <= MAX_NAME_LEN {
        return Ok(name);
    }
    Err(invalid(
        "name",
        format!(
            "invalid name {name:?}: use 1 to {MAX_NAME_LEN} characters from a-z, 0-9, _ and -, \
             starting with a letter or digit"
        ),
    ))
}

fn check_description(description: String) -> Result<String, Invalid> {
    if description.trim().is_empty() {
        return Err(invalid(
            "description",
            "is empty; say in a sentence what the app does, because the planner reads it",
        ));
    }
    Ok(description)
}

fn check_command(command: String) -> Result<String, Invalid> {
    if command.is_empty() {
        return Err(invalid(
            "command",
            "is empty; name the program, as an absolute path inside the sandbox or a bare file name",
        ));
    }
    if command.contains('/') {
        if !command.starts_with('/') {
            return Err(invalid(
                "command",
                format!(
                    "\"{command}\" is a relative path; use an absolute path inside the sandbox or \
                     a bare file name without /"
                ),
            ));
        }
        let path = absolute_normalized(&command).map_err(|reason| invalid("command", reason))?;
        if is_root(&path) {
            return Err(invalid(
                "command",
                "\"/\" is a folder; name the program file",
            ));
        }
        return Ok(path.to_string_lossy().into_owned());
    }
    if command.contains('\0') {
        return Err(invalid(
            "command",
            format!("{command:?} contains a NUL byte"),
        ));
    }
    if command == "." || command == ".." {
        return Err(invalid(
            "command",
            format!("\"{command}\" is not a file name"),
        ));
    }
    if command.chars().any(char::is_whitespace) {
        return Err(invalid(
            "command",
            format!("\"{command}\" contains whitespace; put the program's arguments in args"),
        ));
    }
    Ok(command)
}

fn check_args(args: Vec<String>) -> Result<Vec<String>, Invalid> {
    for (index, arg) in args.iter().enumerate() {
        if arg.contains('\0') {
            return Err(invalid(format!("args[{index}]"), "contains a NUL byte"));
        }
    }
    Ok(args)
}

fn check_cwd(cwd: Option<String>) -> Result<PathBuf, Invalid> {
    let cwd = cwd.unwrap_or_else(|| DEFAULT_CWD.to_owned());
    let path = absolute_normalized(&cwd).map_err(|reason| invalid("cwd", reason))?;
    match under_any(&path, &KERNEL_ROOTS) {
        Some("/proc") => Err(invalid(
            "cwd",
            format!(
                "\"{cwd}\" is under /proc, and a working directory under /proc could leak a host \
                 descriptor into the sandbox; use /state or a folder that the manifest mounts"
            ),
        )),
        Some(root) => Err(invalid(
            "cwd",
            format!("\"{cwd}\" is under {root}; use /state or a folder that the manifest mounts"),
        )),
        None => Ok(path),
    }
}

fn check_env(env: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Invalid> {
    for (key, value) in &env {
        if !is_env_name(key) {
            return Err(invalid(
                "env",
                format!(
                    "invalid variable name {key:?}: use letters, digits and _, not starting with \
                     a digit"
                ),
            ));
        }
        if value.contains('\0') {
            return Err(invalid(format!("env.{key}"), "contains a NUL byte"));
        }
    }
    Ok(env)
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_mounts(raw_mounts: Vec<RawMount>) -> Result<Vec<MountEntry>, Invalid> {
    let mut mounts: Vec<MountEntry> = Vec::with_capacity(raw_mounts.len());
    for (index, raw) in raw_mounts.into_iter().enumerate() {
        let mount = check_mount(index, raw)?;
        if let Some(first) = mounts.iter().position(|m| m.target == mount.target) {
            return Err(invalid(
                format!("mounts[{index}].target"),
                format!(
                    "\"{}\" is already the target of mounts[{first}]; give each mount its own target",
                    mount.target.display()
                ),
            ));
        }
        mounts.push(mount);
    }
    Ok(mounts)
}

fn check_mount(index: usize, raw: RawMount) -> Result<MountEntry, Invalid> {
    let source_key = format!("mounts[{index}].source");
    let target_key = format!("mounts[{index}].target");

    let source_text = raw.source.ok_or_else(|| {
        invalid(
            &source_key,
            "missing; add the host path, such as source = \"/opt/app\"",
        )
    })?;
    let source =
        absolute_normalized(&source_text).map_err(|reason| invalid(&source_key, reason))?;
    if is_root(&source) {
        return Err(invalid(
            &source_key,
            "\"/\" would show the whole host; name the folder that the app needs",
        ));
    }
    if let Some(root) = under_any(&source, &KERNEL_ROOTS) {
        return Err(invalid(
            &source_key,
            format!(
                "\"{source_text}\" is under the host's {root}, which the sandbox never binds; \
                 the sandbox has its own {root}"
            ),
        ));
    }

    let target = match raw.target {
        Some(text) => absolute_normalized(&text).map_err(|reason| invalid(&target_key, reason))?,
        None => source.clone(),
    };
    check_target(&target_key, &target)?;

    Ok(MountEntry {
        source,
        target,
        writable: raw.writable.unwrap_or(false),
    })
}

fn check_target(key: &str, target: &std::path::Path) -> Result<(), Invalid> {
    let target_text = target.display();
    if is_root(target) {
        return Err(invalid(
            key,
            "\"/\" would hide the whole sandbox; mount at a folder such as /data",
        ));
    }
    if target == std::path::Path::new("/etc") {
        return Err(invalid(
            key,
            "\"/etc\" is reserved because it contains the system files that the hub binds; mount at a \
             folder such as /etc/myapp",
        ));
    }
    if let Some(root) = under_any(target, &KERNEL_ROOTS) {
        return Err(invalid(
            key,
            format!(
                "\"{target_text}\" is under {root}, which the sandbox creates itself; mount elsewhere"
            ),
        ));
    }
    if let Some(root) = under_any(target, &RESERVED_TARGET_ROOTS) {
        return Err(invalid(
            key,
            format!(
                "\"{target_text}\" is under {root}, which is reserved; mount at a folder such as /data"
            ),
        ));
    }
    Ok(())
}

fn check_tools(raw: RawTools) -> Result<ToolsConfig, Invalid> {
    if let Some(expose) = &raw.expose {
        check_tool_list("tools.expose", expose)?;
    }
    check_tool_list("tools.destructive", &raw.destructive)?;

    if let Some(expose) = &raw.expose {
        if let Some(missing) = raw.destructive.iter().find(|tool| !expose.contains(tool)) {
            return Err(invalid(
                "tools.destructive",
                format!(
                    "\"{missing}\" is not in tools.expose; add it to expose or remove it from \
                     destructive"
                ),
            ));
        }
    }
    Ok(ToolsConfig {
        expose: raw.expose,
        destructive: raw.destructive,
    })
}

fn check_tool_list(key: &str, tools: &[String]) -> Result<(), Invalid> {
    let mut seen = BTreeSet::new();
    for (index, tool) in tools.iter().enumerate() {
        if tool.trim().is_empty() {
            return Err(invalid(
                format!("{key}[{index}]"),
                "is empty; write the tool's name",
            ));
        }
        if !seen.insert(tool.as_str()) {
            return Err(invalid(
                key,
                format!("\"{tool}\" is listed twice; list it once"),
            ));
        }
    }
    Ok(())
}

/// Returns `value` when it lies in `min..=max`, or a reason naming the range with `show`.
pub(crate) fn check_range<T: PartialOrd + Copy>(
    key: &str,
    value: T,
    min: T,
    max: T,
    show: impl Fn(T) -> String,
) -> Result<T, Invalid> {
    if value < min {
        return Err(invalid(
            key,
            format!("{} is below the minimum of {}", show(value), show(min)),
        ));
    }
    if value > max {
        return Err(invalid(
            key,
            format!("{} is above the maximum of {}", show(value), show(max)),
        ));
    }
    Ok(value)
}

/// Formats a duration for range messages.
pub(crate) fn show_duration(duration: Duration) -> String {
    crate::units::format_duration(duration)
}
