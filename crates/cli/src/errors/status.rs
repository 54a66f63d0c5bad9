//! Messages for gRPC statuses from requests to the hub.

use std::error::Error;
use std::path::Path;
use std::time::Duration;

use tonic::{Code, Status, TimeoutExpired};

use super::{error_chain, find_in_chain, LOG_HINT};
use crate::table::single_line;
use crate::units::format_timeout;

/// The request that failed, for status messages.
pub struct RpcTarget<'a> {
    pub socket: &'a Path,
    pub timeout: Duration,
    /// The gRPC method name, such as "ListApps".
    pub rpc: &'static str,
}

/// Describes a gRPC status from a request to the hub.
pub fn describe_status(status: &Status, target: &RpcTarget<'_>) -> String {
    let message = single_line(status.message());
    let rpc = target.rpc;

    if is_timeout(status) {
        return format!(
            "the hub did not answer {rpc} within {}; retry with a longer --timeout, or {LOG_HINT}",
            format_timeout(target.timeout)
        );
    }
    // Statuses that tonic made on this side, from a transport failure, carry the error as source.
    if status.source().is_some() {
        return format!(
            "lost the connection to the hub at {} during {rpc}: {}; check that bulkheadd is still \
             running (`systemctl status bulkhead`)",
            target.socket.display(),
            error_chain(status)
        );
    }

    match status.code() {
        Code::Unimplemented => format!(
            "the hub at {} does not implement {rpc}; upgrade bulkheadd to the version of this \
             client (bulkhead {})",
            target.socket.display(),
            env!("CARGO_PKG_VERSION")
        ),
        Code::Internal | Code::Unknown | Code::DataLoss => {
            format!("the hub failed on {rpc}: {message}; {LOG_HINT}")
        }
        code if message.is_empty() => {
            format!("the hub rejected {rpc} with status {code:?} and no message; {LOG_HINT}")
        }
        _ => message,
    }
}

/// Reports whether the status is a deadline that expired, on this side or in the hub.
fn is_timeout(status: &Status) -> bool {
    match status.code() {
        Code::DeadlineExceeded => status.message().is_empty(),
        // tonic reports its own `grpc-timeout` expiry, on either side, as CANCELLED.
        Code::Cancelled => {
            find_in_chain::<TimeoutExpired>(status).is_some()
                || status.message() == TimeoutExpired(()).to_string()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOCKET: &str = "/run/bulkhead/hub.sock";

    fn target() -> RpcTarget<'static> {
        RpcTarget {
            socket: Path::new(SOCKET),
            timeout: Duration::from_secs(60),
            rpc: "CallTool",
        }
    }

    #[test]
    fn hub_messages_pass_through() {
        let cases = [
            Code::NotFound,
            Code::InvalidArgument,
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::PermissionDenied,
            Code::FailedPrecondition,
        ];
        for code in cases {
            let status = Status::new(code, "app notes is not registered; list apps with `x`");
            let message = describe_status(&status, &target());
            assert_eq!(
                message, "app notes is not registered; list apps with `x`",
                "{code:?}"
            );
        }
    }

    #[test]
    fn hub_message_flattened_to_one_line() {
        let status = Status::not_found("first line\nsecond line");
        assert_eq!(
            describe_status(&status, &target()),
            "first line second line"
        );
    }

    #[test]
    fn empty_message_names_code() {
        let status = Status::new(Code::FailedPrecondition, "");
        let message = describe_status(&status, &target());
        assert!(
            message.contains("CallTool with status FailedPrecondition"),
            "{message}"
        );
    }

    #[test]
    fn internal_error_points_at_log() {
        let status = Status::internal("store is corrupt");
        let message = describe_status(&status, &target());
        assert_eq!(
            message,
            "the hub failed on CallTool: store is corrupt; check the hub's log (`journalctl -u \
             bulkhead`)"
        );
    }

    #[test]
    fn unimplemented_suggests_upgrade() {
        let message = describe_status(&Status::unimplemented(""), &target());
        assert!(
            message.contains("does not implement CallTool; upgrade bulkheadd"),
            "{message}"
        );
    }

    #[test]
    fn timeout_names_duration() {
        let status = Status::cancelled("Timeout expired");
        let message = describe_status(&status, &target());
        assert!(
            message.starts_with("the hub did not answer CallTool within 1m;"),
            "{message}"
        );
        assert!(message.contains("--timeout"), "{message}");
    }

    #[test]
    fn local_timeout_found_in_source() {
        let status = Status::from_error(Box::new(TimeoutExpired(())));
        let message = describe_status(&status, &target());
        assert!(message.starts_with("the hub did not answer"), "{message}");
    }

    #[test]
    fn local_transport_failure_says_connection_lost() {
        let reset = std::io::Error::from_raw_os_error(libc::ECONNRESET);
        let status = Status::from_error(Box::new(tonic::ConnectError(Box::new(reset))));
        let message = describe_status(&status, &target());
        assert!(
            message.starts_with("lost the connection to the hub at /run/"),
            "{message}"
        );
        assert!(message.contains("connection reset by peer"), "{message}");
    }

    #[test]
    fn cancelled_without_timeout_passes_through() {
        let status = Status::cancelled("the hub is shutting down; retry after it restarts");
        let message = describe_status(&status, &target());
        assert_eq!(message, "the hub is shutting down; retry after it restarts");
    }
}
