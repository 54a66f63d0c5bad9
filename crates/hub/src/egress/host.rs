//! Parsing and normalisation of the host and port in an app's request to the egress proxy.
//!
//! The same rules apply to a proxy request's target, to a manifest's allowlist entries and to the
//! names in hub.toml's `[egress.hosts]`, so that a name is compared with a name in one canonical
//! form: lower case, no trailing dot, IDNA labels in their ASCII (punycode) form.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest DNS name in its text form, without the trailing dot (RFC 1035, 255 octets on the wire).
const MAX_NAME_LEN: usize = 253;
/// Longest DNS label (RFC 1035).
const MAX_LABEL_LEN: usize = 63;

/// Errors from parsing a host or an authority (`host:port`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    // These variants hold the host already escaped by `shown`, so it is quoted without escaping again.
    #[error("the host \"{0}\" contains a NUL byte")]
    NulByte(String),
    #[error("the host \"{0}\" contains a control character")]
    ControlCharacter(String),
    #[error("the host \"{0}\" contains whitespace")]
    Whitespace(String),
    #[error("the host \"{0}\" contains userinfo (a user name before @), which the proxy does not accept")]
    Userinfo(String),
    #[error("the host is empty")]
    Empty,
    #[error("the host is not valid UTF-8")]
    NotUtf8,
    #[error("{0:?} has no port; write it as host:port")]
    MissingPort(String),
    #[error("{authority:?} has the invalid port {port:?}; use a number from 1 to 65535")]
    InvalidPort { authority: String, port: String },
    #[error("{0:?} is an IPv6 address without brackets; write it as [address]:port")]
    UnbracketedIpv6(String),
    #[error("{0:?} is not a valid IPv6 address in brackets")]
    InvalidIpv6(String),
    #[error("{host:?} is not a valid host name: {reason}")]
    InvalidName { host: String, reason: &'static str },
}

/// A host as the proxy compares it: a normalised DNS name or an IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
        }
    }
}

/// A host and port, such as the target of a CONNECT request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub host: Host,
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Returns `bytes` as text for messages and audit records, with NUL and control characters escaped.
pub fn shown(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).escape_debug().to_string()
}

/// Parses an authority, `host:port` or `[ipv6]:port`. Without a port it takes `default_port`,
/// or fails when that is `None`.
///
/// The checks run on the raw bytes first, so that a NUL byte, a control character, whitespace or
/// userinfo is rejected before anything could cut the text short or reinterpret it.
pub fn parse_authority(raw: &[u8], default_port: Option<u16>) -> Result<Target, HostError> {
    check_raw_bytes(raw)?;
    let text = std::str::from_utf8(raw).map_err(|_| HostError::NotUtf8)?;
    if text.is_empty() {
        return Err(HostError::Empty);
    }

    let (host_text, port_text) = split_host_port(text)?;
    let port = match port_text {
        Some(port) => parse_port(text, port)?,
        None => default_port.ok_or_else(|| HostError::MissingPort(text.to_string()))?,
    };
    Ok(Target { host: parse_host(host_text)?, port })
}

/// Parses a host without a port: an IPv4 address, an IPv6 address in brackets, or a DNS name.
pub fn parse_host(text: &str) -> Result<Host, HostError> {
    check_raw_bytes(text.as_bytes())?;
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or_else(|| HostError::InvalidIpv6(text.to_string()))?;
        return inner
            .parse::<Ipv6Addr>()
            .map(|ip| Host::Ip(IpAddr::V6(ip)))
            .map_err(|_| HostError::InvalidIpv6(text.to_string()));
    }
    if text.contains(':') {
        return Err(HostError::UnbracketedIpv6(text.to_string()));
    }
    // std accepts only the four-part dotted decimal form, without leading zeros.
    if let Ok(ip) = text.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    normalize_name(text).map(Host::Name)
}

/// Normalises a DNS name: one trailing dot removed, IDNA (UTS 46) mapping to lower-case ASCII,
/// then letters, digits and hyphens only, within the DNS length limits.
///
/// A name whose last label is all digits, or starts with `0x`, is rejected: resolvers read
/// names such as `127.1`, `2130706433` or `0x7f.1` as IPv4 addresses.
pub fn normalize_name(text: &str) -> Result<String, HostError> {
    check_raw_bytes(text.as_bytes())?;
    let trimmed = text.strip_suffix('.').unwrap_or(text);
    let invalid = |reason| HostError::InvalidName { host: text.to_string(), reason };
    if trimmed.is_empty() {
        return Err(HostError::Empty);
    }
    let ascii = idna::domain_to_ascii(trimmed).map_err(|_| invalid("IDNA processing failed"))?;
    if ascii.len() > MAX_NAME_LEN {
        return Err(invalid("it is longer than 253 characters"));
    }
    for label in ascii.split('.') {
        if label.is_empty() {
            return Err(invalid("it has an empty label"));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(invalid("a label is longer than 63 characters"));
        }
        if !label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(invalid("use only letters, digits, hyphens and dots"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid("a label starts or ends with a hyphen"));
        }
    }
    let last = ascii.rsplit('.').next().unwrap_or_default();
    if last.bytes().all(|b| b.is_ascii_digit()) || last.starts_with("0x") {
        return Err(invalid("it looks like a numeric IP address; write IPv4 addresses as four decimal numbers"));
    }
    Ok(ascii)
}

fn check_raw_bytes(raw: &[u8]) -> Result<(), HostError> {
    if raw.contains(&0) {
        return Err(HostError::NulByte(shown(raw)));
    }
    if raw.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(HostError::ControlCharacter(shown(raw)));
    }
    if raw.contains(&b' ') {
        return Err(HostError::Whitespace(shown(raw)));
    }
    if raw.contains(&b'@') {
        return Err(HostError::Userinfo(shown(raw)));
    }
    Ok(())
}

/// Splits `host:port` or `[ipv6]:port`. The port part is `None` when there is no colon after the
/// host, and `Some("")` for a trailing colon, which [`parse_port`] rejects.
fn split_host_port(text: &str) -> Result<(&str, Option<&str>), HostError> {
    if text.starts_with('[') {
        let close = text.find(']').ok_or_else(|| HostError::InvalidIpv6(text.to_string()))?;
        let (host, rest) = text.split_at(close + 1);
        return match rest {
            "" => Ok((host, None)),
            _ => match rest.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(HostError::InvalidIpv6(text.to_string())),
            },
        };
    }
    match text.split_once(':') {
        Some((host, port)) if !port.contains(':') => Ok((host, Some(port))),
        Some(_) => Err(HostError::UnbracketedIpv6(text.to_string())),
        None => Ok((text, None)),
    }
}

/// Parses a decimal port from 1 to 65535, without sign or leading zeros.
fn parse_port(authority: &str, port: &str) -> Result<u16, HostError> {
    let invalid = || HostError::InvalidPort { authority: authority.to_string(), port: port.to_string() };
    let digits_only = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || port.starts_with('0') {
        return Err(invalid());
    }
    port.parse::<u16>().map_err(|_| invalid())
}
