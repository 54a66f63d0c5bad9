//! Network egress through the hub: an app with `[network] mode = "egress"` reaches the hosts and
//! ports its manifest allows, only through the proxy its spoke runtime serves on 127.0.0.1, and
//! the hub decides and dials every connection.
//!
//! - `host`, `allowlist`, `address`: the pure rules: host normalisation, allowlist matching and the
//!   address classes that are not dialed.
//! - `check`: the checks in order, up to the addresses to dial.
//! - `request`: the proxy request head.
//! - `receive`, `proxy`, `relay`: the connections the runtime passes over, their handling, and
//!   byte counting.

pub mod address;
pub mod allowlist;
pub mod check;
pub mod host;
mod proxy;
mod receive;
pub mod relay;
pub mod request;

#[cfg(test)]
mod tests;

pub use proxy::{spawn, ProxyContext};
pub use relay::{EgressSnapshot, EgressStats};

/// The proxy's port on 127.0.0.1 inside every egress spoke's network namespace. Each spoke has its
/// own namespace, so the port never collides; 3128 is the port HTTP proxies commonly use.
pub const PROXY_PORT: u16 = 3128;

/// Returns the environment that points an egress app's HTTP clients at the proxy. Both spellings
/// are set because clients differ: curl reads only `http_proxy` in lower case, and Python reads
/// either.
pub fn proxy_environment() -> Vec<(String, String)> {
    let url = format!("http://127.0.0.1:{PROXY_PORT}");
    let no_proxy = "localhost,127.0.0.1,::1".to_string();
    let mut env = Vec::new();
    for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        env.push((name.to_string(), url.clone()));
        env.push((name.to_ascii_lowercase(), url.clone()));
    }
    env.push(("NO_PROXY".to_string(), no_proxy.clone()));
    env.push(("no_proxy".to_string(), no_proxy));
    env
}
