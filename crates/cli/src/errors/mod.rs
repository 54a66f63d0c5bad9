//! One-line error messages for failures to reach the hub and for gRPC statuses it returns.
//!
//! Each message names what failed and what to do next. `main` prints it after "error: ".

mod connect;
mod status;

use std::error::Error;
use std::io;

use tonic::Status;

use crate::table::single_line;

pub use connect::describe_connect_error;
pub use status::{describe_status, RpcTarget};

/// How to start the hub, for messages about a hub that is not running.
const START_HINT: &str =
    "start it with `bulkheadd --config /etc/bulkhead/hub.toml` (or `systemctl start bulkhead`)";

/// The command that shows the hub's log, for messages about failures inside the hub.
const LOG_HINT: &str = "check the hub's log (`journalctl -u bulkhead`)";

/// Finds the first error of type `T` in `err` and its sources.
pub(crate) fn find_in_chain<'a, T: Error + 'static>(
    err: &'a (dyn Error + 'static),
) -> Option<&'a T> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

/// Joins the messages of `err` and its sources with ": " on one line, skipping a message that the
/// one before it already contains. A `Status` contributes its message alone, because its `Display`
/// includes a debug dump of its source.
pub(crate) fn error_chain(err: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(err) = current {
        let text = match err.downcast_ref::<Status>() {
            Some(status) => status.message().to_owned(),
            None => err.to_string(),
        };
        let part = clean_message(&text);
        let repeated = parts
            .last()
            .is_some_and(|last| last.to_lowercase().contains(&part.to_lowercase()));
        if !part.is_empty() && !repeated {
            parts.push(part);
        }
        current = err.source();
    }
    parts.join(": ")
}

/// Returns an I/O error's message in the style of `clean_message`.
pub fn io_message(err: &io::Error) -> String {
    clean_message(&err.to_string())
}

/// Flattens a message to one line, drops a trailing " (os error N)", and lower-cases a capitalized
/// first word such as strerror's "Connection refused", leaving acronyms such as "HTTP" alone.
fn clean_message(text: &str) -> String {
    let line = single_line(text);
    let line = match line.rfind(" (os error ") {
        Some(index) if line.ends_with(')') => &line[..index],
        _ => &line,
    };
    let mut chars = line.chars();
    let (Some(first), Some(second)) = (chars.next(), chars.next()) else {
        return line.to_owned();
    };
    if first.is_uppercase() && second.is_lowercase() {
        first.to_lowercase().chain(line.chars().skip(1)).collect()
    } else {
        line.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_message_forms() {
        assert_eq!(
            clean_message("Connection refused (os error 111)"),
            "connection refused"
        );
        assert_eq!(clean_message("HTTP2 error"), "HTTP2 error");
        assert_eq!(clean_message("a\nb"), "a b");
        assert_eq!(clean_message(""), "");
    }
}
