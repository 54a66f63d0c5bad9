#![allow(clippy::unwrap_used)]

//! Unit tests of the egress rules: host normalisation, allowlist matching, address classes,
//! request parsing and the order of the checks. Nothing here opens a socket or resolves a name.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Mutex;

use super::address::{classify, Forbidden};
use super::allowlist::{allows, AllowEntry, AllowlistError, Pattern};
use super::check::{check, Policy, Refusal, Resolver};
use super::host::{normalize_name, parse_authority, Host, HostError, Target};
use super::request::{self, Kind, RequestError};

fn name_target(host: &str, port: u16) -> Target {
    Target { host: Host::Name(host.to_string()), port }
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address parses")
}

// Host normalisation

#[test]
fn host_lower_case_and_trailing_dot() {
    assert_eq!(normalize_name("API.Example.COM.").unwrap(), "api.example.com");
    assert_eq!(normalize_name("api.test").unwrap(), "api.test");
}

#[test]
fn host_idna_to_punycode() {
    assert_eq!(normalize_name("Bücher.example").unwrap(), "xn--bcher-kva.example");
    assert_eq!(normalize_name("xn--bcher-kva.example").unwrap(), "xn--bcher-kva.example");
}

#[test]
fn host_rejects_nul_and_control() {
    let nul = parse_authority(b"api.test\0.evil.test:443", None).unwrap_err();
    assert!(matches!(nul, HostError::NulByte(_)), "{nul}");
    assert!(nul.to_string().contains(r"api.test\0.evil.test"), "{nul}");

    let control = parse_authority(b"api.test\x01:443", None).unwrap_err();
    assert!(matches!(control, HostError::ControlCharacter(_)), "{control}");
    let delete = parse_authority(b"api.test\x7f:443", None).unwrap_err();
    assert!(matches!(delete, HostError::ControlCharacter(_)), "{delete}");
    let tab = parse_authority(b"api.test\t:443", None).unwrap_err();
    assert!(matches!(tab, HostError::ControlCharacter(_)), "{tab}");
}

#[test]
fn host_rejects_userinfo() {
    for raw in [&b"user@api.test:443"[..], b"user:secret@api.test:443", b"api.test:443@evil.test:80"] {
        let error = parse_authority(raw, None).unwrap_err();
        assert!(matches!(error, HostError::Userinfo(_)), "{raw:?}: {error}");
    }
}

#[test]
fn host_rejects_malformed_ports() {
    for raw in ["api.test:", "api.test:0", "api.test:65536", "api.test:-1", "api.test:+80", "api.test:08", "api.test:80a", "api.test:123456"] {
        let error = parse_authority(raw.as_bytes(), None).unwrap_err();
        assert!(matches!(error, HostError::InvalidPort { .. }), "{raw}: {error}");
    }
    let missing = parse_authority(b"api.test", None).unwrap_err();
    assert!(matches!(missing, HostError::MissingPort(_)), "{missing}");
}

#[test]
fn host_port_defaults_for_http() {
    let target = parse_authority(b"api.test", Some(80)).unwrap();
    assert_eq!(target, name_target("api.test", 80));
    let target = parse_authority(b"api.test:8080", Some(80)).unwrap();
    assert_eq!(target.port, 8080);
}

#[test]
fn host_ip_literals() {
    let v4 = parse_authority(b"127.0.0.1:8080", None).unwrap();
    assert_eq!(v4.host, Host::Ip(ip("127.0.0.1")));
    let v6 = parse_authority(b"[::1]:443", None).unwrap();
    assert_eq!(v6.host, Host::Ip(ip("::1")));
    assert_eq!(v6.to_string(), "[::1]:443");

    let unbracketed = parse_authority(b"::1:443", None).unwrap_err();
    assert!(matches!(unbracketed, HostError::UnbracketedIpv6(_)), "{unbracketed}");
    let zone = parse_authority(b"[fe80::1%eth0]:443", None).unwrap_err();
    assert!(matches!(zone, HostError::InvalidIpv6(_)), "{zone}");
}

#[test]
fn host_rejects_numeric_name_forms() {
    // Resolvers read each of these as 127.0.0.1.
    for raw in ["127.1", "2130706433", "0x7f.1", "127.0.0.01", "0177.0.0.1"] {
        let error = parse_authority(format!("{raw}:80").as_bytes(), None).unwrap_err();
        assert!(matches!(error, HostError::InvalidName { .. }), "{raw}: {error}");
    }
}

#[test]
fn host_rejects_bad_labels() {
    for raw in ["a..b", "-a.test", "a-.test", "a_b.test", "a b.test", "."] {
        assert!(normalize_name(raw).is_err(), "{raw:?} was accepted");
    }
    let long_label = format!("{}.test", "a".repeat(64));
    assert!(normalize_name(&long_label).is_err());
    let long_name = format!("{}test", "abcdefghi.".repeat(26));
    assert!(normalize_name(&long_name).is_err());
}

// Allowlist

#[test]
fn allowlist_parses_entries() {
    let exact = AllowEntry::parse("API.Example.com:443").unwrap();
    assert_eq!(exact.pattern, Pattern::Name("api.example.com".into()));
    assert_eq!(exact.port, 443);
    let wildcard = AllowEntry::parse("*.example.org:443").unwrap();
    assert_eq!(wildcard.pattern, Pattern::Suffix("example.org".into()));
    let literal = AllowEntry::parse("127.0.0.1:8080").unwrap();
    assert_eq!(literal.pattern, Pattern::Ip(ip("127.0.0.1")));
    let v6 = AllowEntry::parse("[2001:db8::1]:443").unwrap();
    assert_eq!(v6.to_string(), "[2001:db8::1]:443");
}

#[test]
fn allowlist_rejects_bad_entries() {
    for entry in ["*:443", "a.*.example.org:443", "*example.org:443", "*.*.org:443", "*.127.0.0.1:80"] {
        let error = AllowEntry::parse(entry).unwrap_err();
        assert!(matches!(error, AllowlistError::Wildcard(_) | AllowlistError::Host { .. }), "{entry}: {error}");
    }
    for entry in ["api.example.com", "api.example.com:0", "*.example.org", "user@api.example.com:443"] {
        let error = AllowEntry::parse(entry).unwrap_err();
        assert!(matches!(error, AllowlistError::Host { .. }), "{entry}: {error}");
    }
}

#[test]
fn allowlist_exact_name_and_port() {
    let allow = vec![AllowEntry::parse("api.test:8080").unwrap()];
    assert!(allows(&allow, &name_target("api.test", 8080)));
    assert!(!allows(&allow, &name_target("api.test", 8081)));
    assert!(!allows(&allow, &name_target("sub.api.test", 8080)));
    assert!(!allows(&allow, &name_target("api.test.evil.test", 8080)));
    assert!(!allows(&allow, &Target { host: Host::Ip(ip("127.0.0.1")), port: 8080 }));
}

#[test]
fn allowlist_wildcard_whole_labels() {
    let allow = vec![AllowEntry::parse("*.example.org:443").unwrap()];
    assert!(allows(&allow, &name_target("a.example.org", 443)));
    assert!(allows(&allow, &name_target("a.b.example.org", 443)));
    assert!(!allows(&allow, &name_target("example.org", 443)));
    assert!(!allows(&allow, &name_target("badexample.org", 443)));
    assert!(!allows(&allow, &name_target("a.example.org.evil.test", 443)));
    assert!(!allows(&allow, &name_target("a.example.org", 80)));
}

#[test]
fn allowlist_literal_ip() {
    let allow = vec![AllowEntry::parse("127.0.0.1:8080").unwrap(), AllowEntry::parse("[::1]:8080").unwrap()];
    assert!(allows(&allow, &Target { host: Host::Ip(ip("127.0.0.1")), port: 8080 }));
    assert!(allows(&allow, &Target { host: Host::Ip(ip("::ffff:127.0.0.1")), port: 8080 }));
    assert!(allows(&allow, &Target { host: Host::Ip(ip("::1")), port: 8080 }));
    assert!(!allows(&allow, &Target { host: Host::Ip(ip("127.0.0.2")), port: 8080 }));
    assert!(!allows(&allow, &name_target("localhost", 8080)));
}

// Address classes

#[test]
fn address_classes_v4() {
    let cases = [
        ("0.0.0.0", Some(Forbidden::Unspecified)),
        ("127.0.0.1", Some(Forbidden::Loopback)),
        ("127.255.0.9", Some(Forbidden::Loopback)),
        ("10.1.2.3", Some(Forbidden::Private)),
        ("172.16.0.1", Some(Forbidden::Private)),
        ("172.31.255.255", Some(Forbidden::Private)),
        ("192.168.1.1", Some(Forbidden::Private)),
        ("169.254.1.1", Some(Forbidden::LinkLocal)),
        ("169.254.169.254", Some(Forbidden::Metadata)),
        ("100.64.0.1", Some(Forbidden::SharedNat)),
        ("100.127.255.255", Some(Forbidden::SharedNat)),
        ("100.100.100.200", Some(Forbidden::Metadata)),
        ("224.0.0.1", Some(Forbidden::Multicast)),
        ("255.255.255.255", Some(Forbidden::Broadcast)),
        ("240.0.0.1", Some(Forbidden::Reserved)),
        ("192.0.2.1", Some(Forbidden::Documentation)),
        ("198.18.0.1", Some(Forbidden::Reserved)),
        ("172.32.0.1", None),
        ("100.128.0.1", None),
        ("93.184.215.14", None),
        ("8.8.8.8", None),
    ];
    for (text, expected) in cases {
        assert_eq!(classify(ip(text)), expected, "{text}");
    }
}

#[test]
fn address_classes_v6() {
    let cases = [
        ("::", Some(Forbidden::Unspecified)),
        ("::1", Some(Forbidden::Loopback)),
        ("fd00:ec2::254", Some(Forbidden::Metadata)),
        ("fd12:3456::1", Some(Forbidden::Private)),
        ("fc00::1", Some(Forbidden::Private)),
        ("fe80::1", Some(Forbidden::LinkLocal)),
        ("ff02::1", Some(Forbidden::Multicast)),
        ("2001:db8::1", Some(Forbidden::Documentation)),
        ("::ffff:127.0.0.1", Some(Forbidden::Loopback)),
        ("::ffff:169.254.169.254", Some(Forbidden::Metadata)),
        ("64:ff9b::10.0.0.1", Some(Forbidden::Private)),
        ("2002:7f00:1::", Some(Forbidden::Loopback)),
        ("::127.0.0.1", Some(Forbidden::Reserved)),
        ("2606:4700::1111", None),
        ("64:ff9b::8.8.8.8", None),
    ];
    for (text, expected) in cases {
        assert_eq!(classify(ip(text)), expected, "{text}");
    }
}

// Request parsing

#[test]
fn request_connect_target() {
    let parsed = request::parse(b"CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n").unwrap();
    assert_eq!(parsed.method, "CONNECT");
    assert_eq!(parsed.authority, b"api.test:443");
    assert_eq!(parsed.default_port, None);
    assert_eq!(parsed.kind, Kind::Connect);
}

#[test]
fn request_connect_keeps_nul_for_host_check() {
    let parsed = request::parse(b"CONNECT api.test\0.evil.test:443 HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(parsed.authority, b"api.test\0.evil.test:443");
}

#[test]
fn request_forward_rewrites_head() {
    let head = b"GET http://api.test:8080/data?x=1#frag HTTP/1.1\r\nHost: api.test:8080\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\nConnection: keep-alive, X-Private\r\nX-Private: 1\r\nAccept: */*\r\n\r\n";
    let parsed = request::parse(head).unwrap();
    assert_eq!(parsed.authority, b"api.test:8080");
    assert_eq!(parsed.default_port, Some(80));
    let Kind::Forward { head } = parsed.kind else { panic!("expected a forwarded request") };
    let text = String::from_utf8(head).unwrap();
    assert_eq!(
        text,
        "GET /data?x=1 HTTP/1.1\r\nHost: api.test:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn request_forward_replaces_the_host_header() {
    let head = b"GET http://api.test/ HTTP/1.1\r\nHOST: other.test\r\nAccept: */*\r\nHost: third.test\r\n\r\n";
    let parsed = request::parse(head).unwrap();
    let Kind::Forward { head } = parsed.kind else { panic!("expected a forwarded request") };
    let text = String::from_utf8(head).unwrap();
    assert_eq!(text, "GET / HTTP/1.1\r\nHost: api.test\r\nAccept: */*\r\nConnection: close\r\n\r\n");
}

#[test]
fn request_forward_empty_path() {
    let parsed = request::parse(b"GET http://api.test HTTP/1.1\r\n\r\n").unwrap();
    let Kind::Forward { head } = parsed.kind else { panic!("expected a forwarded request") };
    assert!(head.starts_with(b"GET / HTTP/1.1\r\n"));
    let query = request::parse(b"GET HTTP://api.test?q=1 HTTP/1.1\r\n\r\n").unwrap();
    let Kind::Forward { head } = query.kind else { panic!("expected a forwarded request") };
    assert!(head.starts_with(b"GET /?q=1 HTTP/1.1\r\n"));
}

#[test]
fn request_rejects_bad_syntax() {
    let cases: [&[u8]; 5] = [
        b"GET /relative HTTP/1.1\r\n\r\n",
        b"GET https://api.test/ HTTP/1.1\r\n\r\n",
        b"get http://api.test/ HTTP/1.1\r\n\r\n",
        b"GET http://api.test/ HTTP/2\r\n\r\n",
        b"GET  http://api.test/ HTTP/1.1\r\n\r\n",
    ];
    for head in cases {
        assert!(request::parse(head).is_err(), "{:?} was accepted", String::from_utf8_lossy(head));
    }
    let bad_header = request::parse(b"CONNECT api.test:443 HTTP/1.1\r\nBad Header: x\r\n\r\n").unwrap_err();
    assert!(matches!(bad_header, RequestError::Headers(_)), "{bad_header}");
}

#[tokio::test]
async fn request_head_bounded() {
    let mut oversized: &[u8] = &[b'a'; request::MAX_HEAD_BYTES + 10];
    let error = request::read_head(&mut oversized, std::time::Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(error, RequestError::TooLarge), "{error}");

    let mut pipelined: &[u8] = b"CONNECT api.test:443 HTTP/1.1\r\n\r\nCLIENT-HELLO";
    let (head, rest) = request::read_head(&mut pipelined, std::time::Duration::from_secs(1)).await.unwrap();
    assert_eq!(head, b"CONNECT api.test:443 HTTP/1.1\r\n\r\n");
    assert_eq!(rest, b"CLIENT-HELLO");

    let mut cut: &[u8] = b"CONNECT api.test:443 HTTP/1.1\r\n";
    let error = request::read_head(&mut cut, std::time::Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(error, RequestError::Closed), "{error}");
}

#[tokio::test]
async fn request_head_times_out() {
    let (mut client, _server) = tokio::io::duplex(64);
    let error = request::read_head(&mut client, std::time::Duration::from_millis(50)).await.unwrap_err();
    assert!(matches!(error, RequestError::Timeout(_)), "{error}");
}

// The order of the checks

/// A resolver that returns fixed addresses and records every name it looks up.
struct FakeResolver {
    answers: BTreeMap<String, Vec<IpAddr>>,
    asked: Mutex<Vec<String>>,
}

impl FakeResolver {
    fn new(answers: &[(&str, &[&str])]) -> FakeResolver {
        let answers = answers
            .iter()
            .map(|(name, ips)| (name.to_string(), ips.iter().map(|text| ip(text)).collect()))
            .collect();
        FakeResolver { answers, asked: Mutex::new(Vec::new()) }
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl Resolver for FakeResolver {
    fn lookup<'a>(
        &'a self,
        name: &'a str,
        _port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>> {
        self.asked.lock().unwrap().push(name.to_string());
        let answer = self.answers.get(name).cloned().ok_or_else(|| std::io::Error::other("no such name"));
        Box::pin(async move { answer })
    }
}

fn allowlist(entries: &[&str]) -> Vec<AllowEntry> {
    entries.iter().map(|entry| AllowEntry::parse(entry).unwrap()).collect()
}

#[tokio::test]
async fn check_unlisted_name_never_resolved() {
    let allow = allowlist(&["api.example.com:443"]);
    let pinned = BTreeMap::new();
    let resolver = FakeResolver::new(&[("marker123.exfil.test", &["93.184.215.14"])]);
    let policy = Policy { allow: &allow, pinned: &pinned };

    let refusal = check(&policy, b"marker123.exfil.test:443", None, &resolver).await.unwrap_err();

    assert!(matches!(refusal, Refusal::NotAllowed(_)), "{refusal}");
    assert_eq!(refusal.status().0, 403);
    assert!(resolver.asked().is_empty(), "resolved {:?}", resolver.asked());
}

#[tokio::test]
async fn check_bad_host_never_resolved() {
    let allow = allowlist(&["api.test:443"]);
    let pinned = BTreeMap::new();
    let resolver = FakeResolver::new(&[]);
    let policy = Policy { allow: &allow, pinned: &pinned };

    let refusal = check(&policy, b"api.test\0.evil.test:443", None, &resolver).await.unwrap_err();

    assert!(matches!(refusal, Refusal::Host(HostError::NulByte(_))), "{refusal}");
    assert_eq!(refusal.status().0, 403);
    assert!(resolver.asked().is_empty());
}

#[tokio::test]
async fn check_public_name_dials_resolved_address() {
    let allow = allowlist(&["api.example.com:443"]);
    let pinned = BTreeMap::new();
    let resolver = FakeResolver::new(&[("api.example.com", &["93.184.215.14"])]);
    let policy = Policy { allow: &allow, pinned: &pinned };

    let checked = check(&policy, b"API.example.com.:443", None, &resolver).await.unwrap();

    assert_eq!(checked.addresses, vec![SocketAddr::new(ip("93.184.215.14"), 443)]);
    assert_eq!(resolver.asked(), vec!["api.example.com".to_string()]);
}

#[tokio::test]
async fn check_name_resolving_inward_refused() {
    let allow = allowlist(&["api.example.com:443"]);
    let pinned = BTreeMap::new();
    let resolver = FakeResolver::new(&[("api.example.com", &["93.184.215.14", "169.254.169.254"])]);
    let policy = Policy { allow: &allow, pinned: &pinned };

    let refusal = check(&policy, b"api.example.com:443", None, &resolver).await.unwrap_err();

    let Refusal::Forbidden { address, class, .. } = &refusal else { panic!("expected Forbidden, got {refusal}") };
    assert_eq!(*address, ip("169.254.169.254"));
    assert_eq!(*class, Forbidden::Metadata);
    assert_eq!(refusal.status().0, 403);
}

#[tokio::test]
async fn check_pinned_name_skips_resolver() {
    let allow = allowlist(&["api.test:8080"]);
    let pinned = BTreeMap::from([("api.test".to_string(), vec![IpAddr::V4(Ipv4Addr::LOCALHOST)])]);
    let resolver = FakeResolver::new(&[("api.test", &["93.184.215.14"])]);
    let policy = Policy { allow: &allow, pinned: &pinned };

    let checked = check(&policy, b"api.test:8080", None, &resolver).await.unwrap();

    assert_eq!(checked.addresses, vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 8080))]);
    assert!(resolver.asked().is_empty());
}

#[tokio::test]
async fn check_literal_ip_needs_literal_entry() {
    let pinned = BTreeMap::from([("api.test".to_string(), vec![IpAddr::V4(Ipv4Addr::LOCALHOST)])]);
    let resolver = FakeResolver::new(&[]);

    let by_name = allowlist(&["api.test:8080"]);
    let policy = Policy { allow: &by_name, pinned: &pinned };
    let refusal = check(&policy, b"127.0.0.1:8080", None, &resolver).await.unwrap_err();
    assert!(matches!(refusal, Refusal::NotAllowed(_)), "{refusal}");

    let literal = allowlist(&["[::1]:8080"]);
    let policy = Policy { allow: &literal, pinned: &pinned };
    let checked = check(&policy, b"[::1]:8080", None, &resolver).await.unwrap();
    assert_eq!(checked.addresses, vec![SocketAddr::from((Ipv6Addr::LOCALHOST, 8080))]);
}

#[tokio::test]
async fn check_other_port_refused() {
    let allow = allowlist(&["api.test:8080"]);
    let pinned = BTreeMap::from([("api.test".to_string(), vec![IpAddr::V4(Ipv4Addr::LOCALHOST)])]);
    let resolver = FakeResolver::new(&[]);
    let policy = Policy { allow: &allow, pinned: &pinned };

    let refusal = check(&policy, b"api.test:8081", None, &resolver).await.unwrap_err();

    assert_eq!(refusal.to_string(), "api.test:8081 is not on the app's allowlist; add it to [network] allow in the manifest");
}
