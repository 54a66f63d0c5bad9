//! Reading and parsing the head of a proxy request: `CONNECT host:port` or a plain HTTP request
//! in absolute form (`GET http://host:port/path HTTP/1.1`).
//!
//! The request line is split by hand so that a target with a NUL byte or another invalid byte
//! reaches the host checks, which reject it with a reason, instead of failing as a syntax error.
//! The header block is checked with httparse.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest request head the proxy reads: request line and headers.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most headers a request may carry.
const MAX_HEADERS: usize = 100;

/// Headers that apply to one hop and are not forwarded, besides those named in `Connection`.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
];

/// Errors from reading or parsing a request head. Each maps to an HTTP status in the proxy.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("the request head did not arrive within {0:?}")]
    Timeout(Duration),
    #[error("the request head is larger than {MAX_HEAD_BYTES} bytes")]
    TooLarge,
    #[error("the connection closed before the request head ended")]
    Closed,
    #[error("cannot read the request: {0}")]
    Read(#[from] std::io::Error),
    #[error("invalid request line {0:?}; expected METHOD TARGET HTTP/1.x")]
    RequestLine(String),
    #[error("invalid request headers: {0}")]
    Headers(httparse::Error),
    #[error("the target {0:?} is not an absolute http:// URL; send CONNECT for https and other protocols")]
    NotAbsolute(String),
}

/// The kind of proxy request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A tunnel to the target.
    Connect,
    /// A plain HTTP request, forwarded with this head in origin form.
    Forward { head: Vec<u8> },
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    pub method: String,
    /// The authority as the app wrote it, unchecked: the proxy's host checks parse it.
    pub authority: Vec<u8>,
    /// The port an absolute URL without a port implies, 80 for http; none for CONNECT.
    pub default_port: Option<u16>,
    pub kind: Kind,
}

/// Reads up to the end of the request head within `timeout`. Returns the head, including its
/// final blank line, and any bytes that followed it in the same reads.
pub async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    timeout: Duration,
) -> Result<(Vec<u8>, Vec<u8>), RequestError> {
    let read = async {
        let mut buffer = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        loop {
            let count = stream.read(&mut chunk).await?;
            if count == 0 {
                return Err(RequestError::Closed);
            }
            let searched_from = buffer.len().saturating_sub(3);
            buffer.extend_from_slice(&chunk[..count]);
            if let Some(end) = find_head_end(&buffer[searched_from..]) {
                let end = searched_from + end;
                if end > MAX_HEAD_BYTES {
                    return Err(RequestError::TooLarge);
                }
                let rest = buffer.split_off(end);
                return Ok((buffer, rest));
            }
            if buffer.len() > MAX_HEAD_BYTES {
                return Err(RequestError::TooLarge);
            }
        }
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| RequestError::Timeout(timeout))?
}

/// Returns the index just past the first `\r\n\r\n` in `bytes`.
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|window| window == b"\r\n\r\n").map(|at| at + 4)
}

/// Parses a request head that [`read_head`] returned.
pub fn parse(head: &[u8]) -> Result<ProxyRequest, RequestError> {
    let line_end = head.windows(2).position(|window| window == b"\r\n").unwrap_or(head.len());
    let line = &head[..line_end];
    let headers_block = &head[(line_end + 2).min(head.len())..];
    let line_error = || RequestError::RequestLine(super::host::shown(line));

    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(line_error());
    };
    if method.is_empty() || !method.iter().all(u8::is_ascii_uppercase) || !matches!(version, b"HTTP/1.1" | b"HTTP/1.0") {
        return Err(line_error());
    }
    let method = String::from_utf8_lossy(method).into_owned();

    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let headers = match httparse::parse_headers(headers_block, &mut storage) {
        Ok(httparse::Status::Complete((_, headers))) => headers,
        Ok(httparse::Status::Partial) => return Err(RequestError::Headers(httparse::Error::Token)),
        Err(error) => return Err(RequestError::Headers(error)),
    };

    if method == "CONNECT" {
        return Ok(ProxyRequest { method, authority: target.to_vec(), default_port: None, kind: Kind::Connect });
    }
    let (authority, path) = split_absolute(target)?;
    let head = forwarded_head(&method, authority, path, version, headers);
    Ok(ProxyRequest { method, authority: authority.to_vec(), default_port: Some(80), kind: Kind::Forward { head } })
}

/// Splits `http://authority/path` into the authority and the path with its query, which is `/`
/// when the URL has none. The scheme is matched without regard to case.
fn split_absolute(target: &[u8]) -> Result<(&[u8], &[u8]), RequestError> {
    const SCHEME: &[u8] = b"http://";
    let not_absolute = || RequestError::NotAbsolute(super::host::shown(target));
    if target.len() < SCHEME.len() || !target[..SCHEME.len()].eq_ignore_ascii_case(SCHEME) {
        return Err(not_absolute());
    }
    let rest = &target[SCHEME.len()..];
    let end = rest.iter().position(|b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    // A fragment never goes to the server.
    let path = path.split(|&b| b == b'#').next().unwrap_or_default();
    if path.is_empty() {
        return Ok((authority, b"/"));
    }
    Ok((authority, path))
}

/// Builds the head sent upstream: the request line in origin form, a `Host` header with the URL's
/// authority, the app's headers without the hop-by-hop ones and without its own `Host`, and
/// `Connection: close`. Replacing `Host` is what RFC 9112 section 3.2.2 requires of a proxy that gets
/// an absolute-form request, and it keeps an app from naming one host to the allowlist and another
/// to a server that hosts many names on one address. `Connection: close` makes the server end the
/// exchange after one response, so a second request on the same connection cannot name another
/// host.
fn forwarded_head(method: &str, authority: &[u8], path: &[u8], version: &[u8], headers: &[httparse::Header<'_>]) -> Vec<u8> {
    let named_in_connection: Vec<String> = headers
        .iter()
        .filter(|header| header.name.eq_ignore_ascii_case("connection"))
        .flat_map(|header| String::from_utf8_lossy(header.value).split(',').map(|t| t.trim().to_ascii_lowercase()).collect::<Vec<_>>())
        .collect();
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(method.as_bytes());
    head.push(b' ');
    if path.first() == Some(&b'?') {
        head.push(b'/');
    }
    head.extend_from_slice(path);
    head.push(b' ');
    head.extend_from_slice(version);
    head.extend_from_slice(b"\r\nHost: ");
    head.extend_from_slice(authority);
    head.extend_from_slice(b"\r\n");
    for header in headers {
        let name = header.name.to_ascii_lowercase();
        if name == "host" || HOP_BY_HOP.contains(&name.as_str()) || named_in_connection.contains(&name) {
            continue;
        }
        head.extend_from_slice(header.name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(header.value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    head
}

/// Builds a complete HTTP/1.1 response with a plain-text body, for refusals and errors.
pub fn error_response(status: u16, reason: &str, body: &str) -> Vec<u8> {
    let body = format!("{body}\n");
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The response to a CONNECT whose tunnel is open.
pub const CONNECT_ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";
