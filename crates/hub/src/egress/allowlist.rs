//! A manifest's egress allowlist: the hosts and ports an app may reach through the proxy.
//!
//! An entry is `name:port`, `*.suffix:port`, `ipv4:port` or `[ipv6]:port`. The port is always
//! required and matches exactly. A wildcard matches one or more whole labels in front of its
//! suffix, so `*.example.org` matches `a.example.org` and `a.b.example.org` but not `example.org`.
//! A name never matches an IP address and an IP address never matches a name, so an app that
//! may reach `api.example.com` may not reach the address it resolves to by writing that address.

use std::fmt;
use std::net::IpAddr;

use super::host::{normalize_name, parse_authority, Host, HostError, Target};

/// Errors from parsing an allowlist entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowlistError {
    #[error("{entry:?}: {source}")]
    Host { entry: String, source: HostError },
    #[error(
        "{0:?}: a wildcard must be the whole first label followed by a name, as in \"*.example.org:443\""
    )]
    Wildcard(String),
}

/// The host part of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// Exactly this normalised name.
    Name(String),
    /// Any name that ends with `.` and this normalised suffix.
    Suffix(String),
    /// Exactly this address.
    Ip(IpAddr),
}

/// One allowlist entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowEntry {
    pub pattern: Pattern,
    pub port: u16,
}

impl fmt::Display for AllowEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pattern {
            Pattern::Name(name) => write!(f, "{name}:{}", self.port),
            Pattern::Suffix(suffix) => write!(f, "*.{suffix}:{}", self.port),
            Pattern::Ip(ip) => write!(f, "{}:{}", Host::Ip(*ip), self.port),
        }
    }
}

impl AllowEntry {
    /// Parses one entry, normalising its name as the proxy normalises requests.
    pub fn parse(entry: &str) -> Result<AllowEntry, AllowlistError> {
        let host_error = |source| AllowlistError::Host { entry: entry.to_string(), source };
        if let Some(rest) = entry.strip_prefix("*.") {
            let (suffix, port) = rest.rsplit_once(':').ok_or_else(|| host_error(HostError::MissingPort(entry.into())))?;
            if suffix.contains('*') {
                return Err(AllowlistError::Wildcard(entry.to_string()));
            }
            // Parsing the suffix with the port checks the port by the same rules as a request's.
            let target = parse_authority(format!("{suffix}:{port}").as_bytes(), None).map_err(host_error)?;
            let Host::Name(_) = target.host else {
                return Err(AllowlistError::Wildcard(entry.to_string()));
            };
            let suffix = normalize_name(suffix).map_err(host_error)?;
            return Ok(AllowEntry { pattern: Pattern::Suffix(suffix), port: target.port });
        }
        if entry.contains('*') {
            return Err(AllowlistError::Wildcard(entry.to_string()));
        }
        let target = parse_authority(entry.as_bytes(), None).map_err(host_error)?;
        let pattern = match target.host {
            Host::Name(name) => Pattern::Name(name),
            Host::Ip(ip) => Pattern::Ip(canonical_ip(ip)),
        };
        Ok(AllowEntry { pattern, port: target.port })
    }

    /// Reports whether this entry allows `target`.
    pub fn matches(&self, target: &Target) -> bool {
        if self.port != target.port {
            return false;
        }
        match (&self.pattern, &target.host) {
            (Pattern::Name(name), Host::Name(host)) => name == host,
            (Pattern::Suffix(suffix), Host::Name(host)) => is_under(host, suffix),
            (Pattern::Ip(ip), Host::Ip(host)) => *ip == canonical_ip(*host),
            _ => false,
        }
    }
}

/// Reports whether some entry of `allow` allows `target`.
pub fn allows(allow: &[AllowEntry], target: &Target) -> bool {
    allow.iter().any(|entry| entry.matches(target))
}

/// Reports whether `host` is `suffix` with one or more whole labels in front.
fn is_under(host: &str, suffix: &str) -> bool {
    host.len() > suffix.len() + 1
        && host.ends_with(suffix)
        && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
}

/// Maps an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) to its IPv4 address, so both spellings of
/// one address compare equal.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}
