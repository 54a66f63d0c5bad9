//! Messages for a failed connection to the hub's Unix socket.

use std::error::Error;
use std::io;
use std::path::Path;

use super::{error_chain, find_in_chain, io_message, START_HINT};

/// The stat(2) result for the path given as the hub's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketFile {
    /// The file type, such as "socket", "directory" or "regular file".
    pub kind: &'static str,
    /// Permission bits, such as 0o660.
    pub mode: u32,
    /// Group name, or the numeric gid when /etc/group does not name it.
    pub group: String,
}

/// Describes a failed connection to the hub's socket. `err` is the transport error, whose source
/// chain usually contains the `io::Error` from connect(2).
pub fn describe_connect_error(socket: &Path, err: &(dyn Error + 'static)) -> String {
    let Some(io_error) = find_in_chain::<io::Error>(err) else {
        return format!(
            "cannot connect to the hub at {}: {}; check that bulkheadd is running and that \
             --socket/BULKHEAD_SOCKET names its socket",
            socket.display(),
            error_chain(err)
        );
    };
    describe_connect_io_error(socket, io_error, read_socket_file(socket).as_ref())
}

/// Describes a failed connect(2) to the socket. `file` is what stat(2) showed of the path, or None
/// when stat failed too.
pub fn describe_connect_io_error(
    socket: &Path,
    err: &io::Error,
    file: Option<&SocketFile>,
) -> String {
    let path = socket.display();
    match (err.kind(), file) {
        (io::ErrorKind::NotFound, _) => format!(
            "cannot connect to the hub at {path}: no such file; {START_HINT}, or point \
             --socket/BULKHEAD_SOCKET at its socket"
        ),
        (io::ErrorKind::PermissionDenied, Some(file)) => format!(
            "cannot connect to the hub at {path}: permission denied; the socket is mode {:04o} \
             with group {group}, so run bulkhead as a member of {group} (`usermod -aG {group} \
             USER`, then log in again) or as root",
            file.mode,
            group = file.group,
        ),
        (io::ErrorKind::PermissionDenied, None) => format!(
            "cannot connect to the hub at {path}: permission denied on the socket or a directory \
             above it; run bulkhead as root or as a member of the socket's group"
        ),
        (io::ErrorKind::ConnectionRefused, Some(file)) if file.kind != "socket" => format!(
            "cannot connect to the hub at {path}: it is a {}, not a socket; point \
             --socket/BULKHEAD_SOCKET at the socket that bulkheadd serves on",
            file.kind
        ),
        (io::ErrorKind::ConnectionRefused, _) => format!(
            "cannot connect to the hub at {path}: connection refused, so no hub is listening on \
             that socket; {START_HINT}"
        ),
        _ => format!(
            "cannot connect to the hub at {path}: {}; check that bulkheadd is running and that \
             --socket/BULKHEAD_SOCKET names its socket",
            io_message(err)
        ),
    }
}

/// Reads the file type, permission bits and group of the socket path, or returns None when
/// stat(2) fails.
fn read_socket_file(socket: &Path) -> Option<SocketFile> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    let metadata = std::fs::metadata(socket).ok()?;
    let file_type = metadata.file_type();
    let kind = if file_type.is_socket() {
        "socket"
    } else if file_type.is_dir() {
        "directory"
    } else if file_type.is_file() {
        "regular file"
    } else {
        "special file"
    };
    let gid = metadata.gid();
    let group = std::fs::read_to_string("/etc/group")
        .ok()
        .and_then(|groups| group_name(&groups, gid))
        .unwrap_or_else(|| gid.to_string());
    Some(SocketFile {
        kind,
        mode: metadata.mode() & 0o7777,
        group,
    })
}

/// Looks up a gid in the text of /etc/group, whose lines read "name:password:gid:members".
fn group_name(groups: &str, gid: u32) -> Option<String> {
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?.parse::<u32>().ok()?;
        (id == gid).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const SOCKET: &str = "/run/bulkhead/hub.sock";

    fn io_error(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    #[test]
    fn missing_socket_names_path_and_fix() {
        let message = describe_connect_io_error(Path::new(SOCKET), &io_error(libc::ENOENT), None);
        assert_eq!(
            message,
            "cannot connect to the hub at /run/bulkhead/hub.sock: no such file; start it with \
             `bulkheadd --config /etc/bulkhead/hub.toml` (or `systemctl start bulkhead`), or \
             point --socket/BULKHEAD_SOCKET at its socket"
        );
    }

    #[test]
    fn permission_denied_names_mode_and_group() {
        let file = socket_file("socket");
        let err = io_error(libc::EACCES);
        let message = describe_connect_io_error(Path::new(SOCKET), &err, Some(&file));
        assert!(message.contains("permission denied"), "{message}");
        assert!(
            message.contains("mode 0660 with group bulkhead"),
            "{message}"
        );
        assert!(message.contains("usermod -aG bulkhead USER"), "{message}");
    }

    #[test]
    fn permission_denied_without_stat() {
        let err = io_error(libc::EACCES);
        let message = describe_connect_io_error(Path::new(SOCKET), &err, None);
        assert!(message.contains("directory above it"), "{message}");
    }

    fn socket_file(kind: &'static str) -> SocketFile {
        SocketFile {
            kind,
            mode: 0o660,
            group: "bulkhead".into(),
        }
    }

    #[test]
    fn connection_refused_suggests_start() {
        let err = io_error(libc::ECONNREFUSED);
        let file = socket_file("socket");
        let message = describe_connect_io_error(Path::new(SOCKET), &err, Some(&file));
        assert!(message.contains("no hub is listening"), "{message}");
        assert!(message.contains("systemctl start bulkhead"), "{message}");
    }

    #[test]
    fn connection_refused_on_non_socket() {
        let err = io_error(libc::ECONNREFUSED);
        let file = socket_file("regular file");
        let message = describe_connect_io_error(Path::new(SOCKET), &err, Some(&file));
        assert!(
            message.contains("hub.sock: it is a regular file, not a socket;"),
            "{message}"
        );
    }

    #[test]
    fn other_io_error_drops_os_error_suffix() {
        let err = io_error(libc::ENOTDIR);
        let message = describe_connect_io_error(Path::new(SOCKET), &err, None);
        assert!(message.contains(": not a directory; check"), "{message}");
        assert!(!message.contains("os error"), "{message}");
    }

    #[test]
    fn connect_error_found_in_source_chain() {
        #[derive(Debug)]
        struct Wrapper(io::Error);
        impl std::fmt::Display for Wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("transport error")
            }
        }
        impl Error for Wrapper {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let missing = PathBuf::from("/nonexistent/bulkhead-test.sock");
        let message = describe_connect_error(&missing, &Wrapper(io_error(libc::ENOENT)));
        assert!(
            message.contains("bulkhead-test.sock: no such file; start it"),
            "{message}"
        );
    }

    #[test]
    fn group_name_from_etc_group() {
        let groups = "root:x:0:\nbulkhead:x:997:alice,bob\nbroken line\n";
        assert_eq!(group_name(groups, 997).as_deref(), Some("bulkhead"));
        assert_eq!(group_name(groups, 0).as_deref(), Some("root"));
        assert_eq!(group_name(groups, 5), None);
    }
}
