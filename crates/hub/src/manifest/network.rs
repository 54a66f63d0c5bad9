//! Validation of a manifest's `[network]` table.

use super::raw::RawNetwork;
use super::validate::{check_range, invalid, Invalid};
use super::{NetworkConfig, NetworkMode, DEFAULT_MAX_CONNECTIONS};
use crate::egress::allowlist::AllowEntry;

/// Upper bound of `max_connections`; each open connection costs the hub two sockets.
const MAX_CONNECTIONS: i64 = 4096;

pub(super) fn check_network(raw: RawNetwork) -> Result<NetworkConfig, Invalid> {
    let mode = match raw.mode.as_deref() {
        None | Some("none") => NetworkMode::None,
        Some("egress") => NetworkMode::Egress,
        Some(other) => {
            return Err(invalid(
                "network.mode",
                format!("\"{other}\" is not a network mode; use \"none\" or \"egress\""),
            ))
        }
    };
    let max_connections = match raw.max_connections {
        Some(value) => {
            let value = check_range("network.max_connections", value, 1, MAX_CONNECTIONS, |n| n.to_string())?;
            u32::try_from(value).unwrap_or(DEFAULT_MAX_CONNECTIONS)
        }
        None => DEFAULT_MAX_CONNECTIONS,
    };

    if mode == NetworkMode::None {
        if raw.allow.as_ref().is_some_and(|allow| !allow.is_empty()) {
            return Err(invalid(
                "network.allow",
                "is set but network.mode is \"none\"; set mode = \"egress\" to use the allowlist, or remove allow",
            ));
        }
        return Ok(NetworkConfig { mode, allow: Vec::new(), max_connections });
    }

    let texts = raw.allow.unwrap_or_default();
    if texts.is_empty() {
        return Err(invalid(
            "network.allow",
            "is empty, so an egress app could reach nothing; list hosts such as allow = [\"api.example.com:443\"]",
        ));
    }
    let mut allow: Vec<AllowEntry> = Vec::with_capacity(texts.len());
    for (index, text) in texts.iter().enumerate() {
        let key = format!("network.allow[{index}]");
        let entry = AllowEntry::parse(text).map_err(|error| invalid(&key, error.to_string()))?;
        if allow.contains(&entry) {
            return Err(invalid(&key, format!("{text:?} is listed twice; list it once")));
        }
        allow.push(entry);
    }
    Ok(NetworkConfig { mode, allow, max_connections })
}
