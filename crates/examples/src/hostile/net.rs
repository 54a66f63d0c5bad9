//! Network attempts: inet and Unix connects, raw socket families, DNS and UDP.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixStream};
use std::time::Duration;

use super::{Args, Outcome};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Connects over TCP to `host`:`port`, where host is an IPv4 or IPv6 literal.
pub fn connect_tcp(args: &Args) -> Outcome {
    let text = format!("{}:{}", bracket(&args.str("host")), args.int("port", 0));
    let address: SocketAddr = match text.parse() {
        Ok(address) => address,
        Err(_) => return Outcome::new("EINVAL", format!("not an address: {text}")),
    };
    match TcpStream::connect_timeout(&address, CONNECT_TIMEOUT) {
        Ok(_) => Outcome::new("ok", format!("connected to {address}")),
        Err(error) => Outcome::error(&error, format!("connect {address}")),
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Connects to the abstract Unix socket `name`.
pub fn connect_abstract(args: &Args) -> Outcome {
    let name = args.str("name");
    let address = match UnixAddr::from_abstract_name(name.as_bytes()) {
        Ok(address) => address,
        Err(error) => return Outcome::error(&error, "abstract address"),
    };
    match UnixStream::connect_addr(&address) {
        Ok(_) => Outcome::new("ok", format!("connected to @{name}")),
        Err(error) => Outcome::error(&error, format!("connect @{name}")),
    }
}

/// Connects to the Unix socket at `path`.
pub fn connect_unix(args: &Args) -> Outcome {
    let path = args.str("path");
    match UnixStream::connect(&path) {
        Ok(_) => Outcome::new("ok", format!("connected to {path}")),
        Err(error) => Outcome::error(&error, format!("connect {path}")),
    }
}

/// Opens a socket of `family` (`packet`, `vsock` or `netlink`).
pub fn open_socket(args: &Args) -> Outcome {
    let family = args.str("family");
    let (domain, kind, protocol) = match family.as_str() {
        "packet" => (
            libc::AF_PACKET,
            libc::SOCK_RAW,
            i32::from(0x0003u16.to_be()),
        ),
        "vsock" => (libc::AF_VSOCK, libc::SOCK_STREAM, 0),
        "netlink" => (libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE),
        _ => return Outcome::new("EINVAL", format!("unknown family {family}")),
    };
    // SAFETY: socket takes plain integers. A descriptor it returns is closed right away.
    let fd = unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, protocol) };
    let outcome = Outcome::from_ret(fd.into(), format!("socket(AF_{})", family.to_uppercase()));
    if fd >= 0 {
        // SAFETY: fd is the descriptor opened above.
        unsafe { libc::close(fd) };
    }
    outcome
}

/// Resolves `name` through getaddrinfo, which reads /etc/nsswitch.conf and may ask DNS servers.
pub fn resolve(args: &Args) -> Outcome {
    let name = args.str("name");
    match (name.as_str(), 80).to_socket_addrs() {
        Ok(addresses) => {
            let list: Vec<String> = addresses.map(|address| address.ip().to_string()).collect();
            Outcome::new("ok", list.join(" "))
        }
        Err(error) => Outcome::new("failed", format!("resolve {name}: {error}")),
    }
}

/// Sends one UDP datagram to `host`:`port`.
pub fn send_udp(args: &Args) -> Outcome {
    let text = format!("{}:{}", bracket(&args.str("host")), args.int("port", 0));
    let Ok(address) = text.parse::<SocketAddr>() else {
        return Outcome::new("EINVAL", format!("not an address: {text}"));
    };
    let bind = if address.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let sent = UdpSocket::bind(bind).and_then(|socket| socket.send_to(b"escape", address));
    match sent {
        Ok(count) => Outcome::new("ok", format!("sent {count} bytes to {address}")),
        Err(error) => Outcome::error(&error, format!("send to {address}")),
    }
}
