//! Writing results to stdout and warnings to stderr, as text or JSON.

use std::io::{self, IsTerminal, Write};

use serde::Serialize;

use crate::table::Table;

/// The width used for tables when the terminal does not report one.
const FALLBACK_COLUMNS: usize = 80;

/// The destination and format of a command's result: stdout and stderr, as text or JSON.
pub struct Output {
    /// Print one JSON document instead of text.
    pub json: bool,
    stdout_is_terminal: bool,
    stderr_is_terminal: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output {
            json,
            stdout_is_terminal: io::stdout().is_terminal(),
            stderr_is_terminal: io::stderr().is_terminal(),
        }
    }

    /// Prints `value` as one pretty-printed JSON document on stdout.
    pub fn print_json<T: Serialize>(&self, value: &T) -> io::Result<()> {
        let mut text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
        text.push('\n');
        io::stdout().lock().write_all(text.as_bytes())
    }

    /// Prints text on stdout, ending it with a newline when it lacks one. On a terminal, control
    /// characters other than newline and tab are replaced so that the text cannot drive it.
    pub fn print_text(&self, text: &str) -> io::Result<()> {
        let mut text = if self.stdout_is_terminal {
            terminal_safe(text)
        } else {
            text.to_owned()
        };
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        io::stdout().lock().write_all(text.as_bytes())
    }

    /// Prints a table on stdout. With `fit_last_column`, the last column is cut to the terminal's
    /// width, but only when stdout is a terminal.
    pub fn print_table(&self, table: &Table, fit_last_column: bool) -> io::Result<()> {
        let width = (fit_last_column && self.stdout_is_terminal).then(terminal_columns);
        io::stdout()
            .lock()
            .write_all(table.render(width).as_bytes())
    }

    /// Prints "warning: MESSAGE" on stderr.
    pub fn warn(&self, message: &str) {
        self.print_stderr(&format!("warning: {message}"));
    }

    /// Prints one or more lines on stderr, ignoring a closed stderr because nothing is left to
    /// report that failure to.
    pub fn print_stderr(&self, text: &str) {
        let mut text = if self.stderr_is_terminal {
            terminal_safe(text)
        } else {
            text.to_owned()
        };
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let _ = io::stderr().lock().write_all(text.as_bytes());
    }
}

/// Replaces control characters other than newline and tab with U+FFFD, so that text from an app
/// cannot send escape sequences to the user's terminal.
pub fn terminal_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// Returns the width of the terminal on stdout, from TIOCGWINSZ, then $COLUMNS, then 80.
fn terminal_columns() -> usize {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which points at a live, writable
    // local of exactly that type. On a non-terminal fd the ioctl fails and writes nothing.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) };
    if rc == 0 && size.ws_col > 0 {
        return usize::from(size.ws_col);
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|columns| columns.trim().parse().ok())
        .filter(|&columns: &usize| columns > 0)
        .unwrap_or(FALLBACK_COLUMNS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_safe_keeps_newlines_and_tabs() {
        assert_eq!(terminal_safe("a\tb\nc"), "a\tb\nc");
    }

    #[test]
    fn terminal_safe_replaces_escapes() {
        assert_eq!(terminal_safe("\u{1b}[2Jx\r"), "\u{FFFD}[2Jx\u{FFFD}");
    }
}
