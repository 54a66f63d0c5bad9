//! The classes of addresses the proxy does not dial for a name that DNS resolved.
//!
//! Only a public unicast address passes. The operator allows any other address by writing it as a
//! literal IP in the app's allowlist, or by pinning a name to it in hub.toml's `[egress.hosts]`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The reason an address is not dialed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    Unspecified,
    Loopback,
    Private,
    LinkLocal,
    SharedNat,
    Multicast,
    Broadcast,
    Metadata,
    Documentation,
    Reserved,
}

impl Forbidden {
    /// Returns the class as it reads in a refusal, such as "a loopback address".
    pub fn describe(self) -> &'static str {
        match self {
            Forbidden::Unspecified => "an unspecified address",
            Forbidden::Loopback => "a loopback address",
            Forbidden::Private => "a private address",
            Forbidden::LinkLocal => "a link-local address",
            Forbidden::SharedNat => "a carrier-grade NAT address (100.64.0.0/10)",
            Forbidden::Multicast => "a multicast address",
            Forbidden::Broadcast => "the broadcast address",
            Forbidden::Metadata => "a cloud metadata address",
            Forbidden::Documentation => "a documentation address",
            Forbidden::Reserved => "a reserved address",
        }
    }
}

/// Cloud instance metadata services: AWS, GCP and Azure (169.254.169.254), AWS ECS task metadata
/// (169.254.170.2) and Alibaba Cloud (100.100.100.200).
const METADATA_V4: [Ipv4Addr; 3] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(100, 100, 100, 200),
];
/// The AWS instance metadata service over IPv6.
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);

/// Returns the class that forbids dialing `ip`, or `None` for a public unicast address.
pub fn classify(ip: IpAddr) -> Option<Forbidden> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Forbidden> {
    let [a, b, c, _] = ip.octets();
    if METADATA_V4.contains(&ip) {
        return Some(Forbidden::Metadata);
    }
    let class = match (a, b, c) {
        (0, _, _) => Forbidden::Unspecified,
        (127, _, _) => Forbidden::Loopback,
        (10, _, _) | (192, 168, _) => Forbidden::Private,
        (172, 16..=31, _) => Forbidden::Private,
        (169, 254, _) => Forbidden::LinkLocal,
        (100, 64..=127, _) => Forbidden::SharedNat,
        (224..=239, _, _) => Forbidden::Multicast,
        (255, 255, 255) if ip.is_broadcast() => Forbidden::Broadcast,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Forbidden::Documentation,
        // IETF protocol assignments, benchmarking, and the former class E.
        (192, 0, 0) | (198, 18..=19, _) | (240..=255, _, _) => Forbidden::Reserved,
        _ => return None,
    };
    Some(class)
}

fn classify_v6(ip: Ipv6Addr) -> Option<Forbidden> {
    if ip == METADATA_V6 {
        return Some(Forbidden::Metadata);
    }
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let segments = ip.segments();
    let first = segments[0];
    let class = if ip.is_unspecified() {
        Forbidden::Unspecified
    } else if ip.is_loopback() {
        Forbidden::Loopback
    } else if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 {
        // Unique local fc00::/7, and the deprecated site-local fec0::/10.
        Forbidden::Private
    } else if first & 0xffc0 == 0xfe80 {
        Forbidden::LinkLocal
    } else if first & 0xff00 == 0xff00 {
        Forbidden::Multicast
    } else if first == 0x2001 && segments[1] == 0x0db8 {
        Forbidden::Documentation
    } else if segments[..6] == [0; 6] || first == 0x0100 || (first == 0x2001 && segments[1] == 0) {
        // Deprecated IPv4-compatible ::a.b.c.d, the discard prefix 100::/64, and Teredo 2001::/32.
        Forbidden::Reserved
    } else if first == 0x0064 && segments[1] == 0xff9b && segments[2] == 1 {
        // The local-use NAT64 prefix 64:ff9b:1::/48 translates into the operator's own networks.
        Forbidden::Private
    } else {
        return None;
    };
    Some(class)
}

/// Returns the IPv4 address inside an IPv4-mapped (`::ffff:0:0/96`), NAT64 (`64:ff9b::/96`) or
/// 6to4 (`2002::/16`) address, each of which reaches that IPv4 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let segments = ip.segments();
    let octets = ip.octets();
    if segments[..6] == [0x0064, 0xff9b, 0, 0, 0, 0] {
        return Some(Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]));
    }
    if segments[0] == 0x2002 {
        return Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5]));
    }
    None
}
