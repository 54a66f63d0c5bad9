//! hub.toml's `[egress]` section: the proxy's timeouts and the names pinned to addresses.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use super::validate::check_duration;
use super::EgressConfig;
use crate::egress::host::normalize_name;
use crate::manifest::validate::{invalid, Invalid};

/// Shortest accepted proxy timeout: below it, a loaded host fails requests that would succeed.
const MIN_TIMEOUT: Duration = Duration::from_millis(100);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEgress {
    connect_timeout: Option<String>,
    header_timeout: Option<String>,
    #[serde(default)]
    hosts: BTreeMap<String, RawAddresses>,
}

/// One address, or a list of addresses tried in order.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawAddresses {
    One(String),
    Many(Vec<String>),
}

pub(super) fn check_egress(raw: RawEgress) -> Result<EgressConfig, Invalid> {
    let defaults = EgressConfig::default();
    let connect_timeout = match raw.connect_timeout {
        Some(text) => check_duration("egress.connect_timeout", &text, MIN_TIMEOUT)?,
        None => defaults.connect_timeout,
    };
    let header_timeout = match raw.header_timeout {
        Some(text) => check_duration("egress.header_timeout", &text, MIN_TIMEOUT)?,
        None => defaults.header_timeout,
    };
    let mut hosts = BTreeMap::new();
    for (name, addresses) in raw.hosts {
        let key = format!("egress.hosts.{name:?}");
        let normalized = normalize_name(&name).map_err(|error| {
            invalid(&key, format!("{error}; write a DNS name such as \"api.internal.example\""))
        })?;
        let texts = match addresses {
            RawAddresses::One(text) => vec![text],
            RawAddresses::Many(texts) => texts,
        };
        if texts.is_empty() {
            return Err(invalid(&key, "lists no address; give one IP address or a list of them"));
        }
        let mut ips = Vec::with_capacity(texts.len());
        for text in texts {
            let ip: IpAddr = text.trim().parse().map_err(|_| {
                invalid(&key, format!("{text:?} is not an IP address; write one such as \"127.0.0.1\" or \"::1\""))
            })?;
            ips.push(ip);
        }
        if hosts.insert(normalized.clone(), ips).is_some() {
            return Err(invalid(&key, format!("names {normalized:?} a second time; list each name once")));
        }
    }
    Ok(EgressConfig { hosts, connect_timeout, header_timeout })
}
