//! The checks the hub runs on a proxy request before it dials, in this order: parse and normalise
//! the host, match the allowlist, resolve the name, check the addresses.
//!
//! A name that is not on the allowlist is never resolved, so a lookup cannot carry data out.
//! The addresses returned are the ones the proxy dials, so a name cannot resolve one way for the
//! check and another way for the connection.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::time::Duration;

use super::address::{classify, Forbidden};
use super::allowlist::{allows, AllowEntry};
use super::host::{parse_authority, Host, HostError, Target};

/// The reason the proxy does not dial.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    Host(#[from] HostError),
    #[error("{0} is not on the app's allowlist; add it to [network] allow in the manifest")]
    NotAllowed(Target),
    #[error(
        "{host} resolves to {address}, {}; write the address in [network] allow, or pin the name in \
         [egress.hosts] of hub.toml, if the app may reach it", class.describe()
    )]
    Forbidden { host: String, address: IpAddr, class: Forbidden },
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
}

impl Refusal {
    /// Returns the HTTP status and reason phrase of the proxy's response.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            Refusal::Resolve { .. } => (502, "Bad Gateway"),
            _ => (403, "Forbidden"),
        }
    }
}

/// A request that passed every check, with the addresses to dial in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub target: Target,
    pub addresses: Vec<SocketAddr>,
}

/// Looks names up. The hub uses [`SystemResolver`]; unit tests use a fake one.
pub trait Resolver: Send + Sync {
    fn lookup<'a>(
        &'a self,
        name: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>>;
}

/// getaddrinfo through tokio, with a time limit.
pub struct SystemResolver {
    pub timeout: Duration,
}

impl Resolver for SystemResolver {
    fn lookup<'a>(
        &'a self,
        name: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>> {
        Box::pin(async move {
            let found = tokio::time::timeout(self.timeout, tokio::net::lookup_host((name, port)))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "the lookup timed out"))??;
            Ok(found.map(|address| address.ip()).collect())
        })
    }
}

/// One app's egress policy.
pub struct Policy<'a> {
    pub allow: &'a [AllowEntry],
    /// hub.toml's `[egress.hosts]`: normalised names pinned to addresses, which are trusted.
    pub pinned: &'a BTreeMap<String, Vec<IpAddr>>,
}

/// Runs every check on the authority the app asked for and returns the addresses to dial.
pub async fn check(
    policy: &Policy<'_>,
    authority: &[u8],
    default_port: Option<u16>,
    resolver: &dyn Resolver,
) -> Result<Checked, Refusal> {
    let target = parse_authority(authority, default_port)?;
    if !allows(policy.allow, &target) {
        return Err(Refusal::NotAllowed(target));
    }
    let ips = match &target.host {
        // The allowlist named this address literally, which is the operator's consent.
        Host::Ip(ip) => vec![*ip],
        Host::Name(name) => match policy.pinned.get(name) {
            Some(pinned) => pinned.clone(),
            None => resolve_public(resolver, name, target.port).await?,
        },
    };
    let addresses = ips.into_iter().map(|ip| SocketAddr::new(ip, target.port)).collect();
    Ok(Checked { target, addresses })
}

/// Resolves `name` and checks that every address is public. One forbidden address refuses the
/// whole name, because an allowlisted name that resolves into an internal network points to a
/// mistake or an attack.
async fn resolve_public(resolver: &dyn Resolver, name: &str, port: u16) -> Result<Vec<IpAddr>, Refusal> {
    let resolve_error = |reason: String| Refusal::Resolve { host: name.to_string(), reason };
    let ips = resolver.lookup(name, port).await.map_err(|error| resolve_error(error.to_string()))?;
    if ips.is_empty() {
        return Err(resolve_error("no address found".into()));
    }
    for ip in &ips {
        if let Some(class) = classify(*ip) {
            return Err(Refusal::Forbidden { host: name.to_string(), address: *ip, class });
        }
    }
    Ok(ips)
}
