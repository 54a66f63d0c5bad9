//! Reading TOML files with a size cap, and turning toml's parse errors into one-line diagnostics
//! that name the line, the column and, where the text shows it, the key.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The largest manifest or hub config file that is read.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Reads a UTF-8 text file of at most [`MAX_FILE_BYTES`].
///
/// Files that are not regular files (a FIFO would block the read) fail with `InvalidInput`,
/// larger ones with `FileTooLarge` and text that is not UTF-8 with `InvalidData`.
pub(crate) fn read_text_file(path: &Path) -> io::Result<String> {
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }

    let mut bytes = Vec::new();
    File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("larger than the {MAX_FILE_BYTES}-byte limit"),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not valid UTF-8 text"))
}

/// A TOML syntax error, a value of the wrong type, or an unknown or missing key, located in the
/// source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TomlDiagnostic {
    /// The 1-based line, when toml reported a position.
    pub line: Option<usize>,
    /// The 1-based column in characters, when toml reported a position.
    pub column: Option<usize>,
    /// The dotted key at that position, such as `limits.pids`, when the text shows one.
    pub key: Option<String>,
    /// The kind of problem, with its one-line message.
    pub kind: DiagnosticKind,
}

/// The two shapes of [`TomlDiagnostic`] message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiagnosticKind {
    /// A key that the format does not have, with the keys that the same table accepts.
    UnknownKey { expected: String },
    /// Any other error, with toml's message.
    Other { message: String },
}

impl TomlDiagnostic {
    /// Builds a diagnostic from a toml error on `text`.
    pub(crate) fn new(error: &toml::de::Error, text: &str) -> TomlDiagnostic {
        let (line, column) = match error.span() {
            Some(span) => {
                let (line, column) = line_and_column(text, span.start);
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        let mut key = error.span().and_then(|span| key_path_at(text, span.start));

        let message = error.message();
        let kind = match parse_unknown_field(message) {
            Some((field, expected)) => {
                key = Some(unknown_key_path(key, &field));
                DiagnosticKind::UnknownKey { expected }
            }
            None => DiagnosticKind::Other {
                message: plain_message(message),
            },
        };
        TomlDiagnostic {
            line,
            column,
            key,
            kind,
        }
    }
}

impl fmt::Display for TomlDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            DiagnosticKind::UnknownKey { expected } => {
                write!(f, "unknown key \"{}\"", self.key.as_deref().unwrap_or("?"))?;
                if let Some(line) = self.line {
                    write!(f, " at line {line}")?;
                }
                write!(f, "; expected {expected}")
            }
            DiagnosticKind::Other { message } => {
                if let Some(key) = &self.key {
                    write!(f, "{key}: ")?;
                }
                write!(f, "{message}")?;
                if let (Some(line), Some(column)) = (self.line, self.column) {
                    write!(f, " at line {line}, column {column}")?;
                }
                Ok(())
            }
        }
    }
}

/// Returns the 1-based line and character column of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |index| index + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Splits serde's "unknown field `x`, expected ..." message into the field and the expected
/// keys, with the backticks dropped.
fn parse_unknown_field(message: &str) -> Option<(String, String)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, expected) = rest.split_once("`, expected ")?;
    Some((field.to_owned(), expected.replace('`', "")))
}

/// Names an unknown field by the key path found in the text. When that path is only the
/// enclosing key, as for a field inside an inline table, the field is appended to it.
fn unknown_key_path(path: Option<String>, field: &str) -> String {
    match path {
        Some(path) if path == field || path.ends_with(&format!(".{field}")) => path,
        Some(path) => format!("{path}.{field}"),
        None => field.to_owned(),
    }
}

/// Joins toml's multi-line messages and names the Rust types of serde's messages in TOML terms.
fn plain_message(message: &str) -> String {
    let joined = message.lines().collect::<Vec<_>>().join("; ");
    joined
        .replace("expected i64", "expected an integer")
        .replace("expected u32", "expected an integer")
        .replace("expected u64", "expected an integer")
        .replace("expected f64", "expected a number")
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected a table")
}

/// Finds the dotted key whose line contains `offset`, prefixed by the enclosing `[table]` or
/// `[[array]]` header, such as `limits.pids` or `mounts[1].source`.
///
/// This reads the text line by line rather than parsing it, so it names only a key that starts
/// its own line. For a value inside an inline table or on a continuation line of a multi-line
/// array it returns the outer key or nothing, which is still correct, only less precise.
pub(crate) fn key_path_at(text: &str, offset: usize) -> Option<String> {
    let mut table: Option<String> = None;
    let mut array_counts: Vec<(String, usize)> = Vec::new();
    let mut line_start = 0;

    for line in text.split_inclusive('\n') {
        let line_end = line_start + line.len();
        let trimmed = line.trim();

        if let Some(header) = parse_header(trimmed) {
            table = Some(match header {
                Header::Table(name) => name,
                Header::ArrayEntry(name) => {
                    let index = next_array_index(&mut array_counts, &name);
                    format!("{name}[{index}]")
                }
            });
            if offset < line_end {
                return table;
            }
        } else if offset < line_end {
            let key = line_key(trimmed)?;
            return Some(match table {
                Some(table) => format!("{table}.{key}"),
                None => key,
            });
        }
        line_start = line_end;
    }
    None
}

enum Header {
    Table(String),
    ArrayEntry(String),
}

/// Parses a `[name]` or `[[name]]` line, ignoring a trailing comment.
fn parse_header(line: &str) -> Option<Header> {
    let line = line.split('#').next().unwrap_or("").trim();
    if let Some(inner) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
        return Some(Header::ArrayEntry(normalize_key(inner)));
    }
    let inner = line.strip_prefix('[')?.strip_suffix(']')?;
    Some(Header::Table(normalize_key(inner)))
}

/// Returns the key of a `key = value` line.
fn line_key(line: &str) -> Option<String> {
    let (key, _) = line.split_once('=')?;
    let key = normalize_key(key);
    (!key.is_empty() && !key.starts_with('#')).then_some(key)
}

/// Drops quotes and the spaces around dots, so `"a" . b` reads as `a.b`.
fn normalize_key(key: &str) -> String {
    key.split('.')
        .map(|part| part.trim().trim_matches(|c| c == '"' || c == '\''))
        .collect::<Vec<_>>()
        .join(".")
}

fn next_array_index(counts: &mut Vec<(String, usize)>, name: &str) -> usize {
    match counts.iter_mut().find(|(existing, _)| existing == name) {
        Some((_, count)) => {
            *count += 1;
            *count - 1
        }
        None => {
            counts.push((name.to_owned(), 1));
            0
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_counts_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_and_column(text, 0), (1, 1));
        assert_eq!(line_and_column(text, 6), (2, 1));
        let quote = text.find('"').unwrap();
        assert_eq!(line_and_column(text, quote), (2, 6));
    }

    #[test]
    fn key_path_top_level() {
        let text = "name = \"x\"\ncommnd = 3\n";
        assert_eq!(key_path_at(text, 12).as_deref(), Some("commnd"));
        assert_eq!(key_path_at(text, 0).as_deref(), Some("name"));
    }

    #[test]
    fn key_path_in_table() {
        let text = "name = \"x\"\n\n[limits] # caps\npids = \"x\"\n";
        let offset = text.find("\"x\"\n").unwrap();
        assert_eq!(
            key_path_at(text, text.len() - 3).as_deref(),
            Some("limits.pids")
        );
        assert_eq!(key_path_at(text, offset).as_deref(), Some("name"));
    }

    #[test]
    fn key_path_in_array_of_tables() {
        let text = "[[mounts]]\nsource = \"/a\"\n[[mounts]]\nsorce = \"/b\"\n";
        let offset = text.find("sorce").unwrap();
        assert_eq!(
            key_path_at(text, offset).as_deref(),
            Some("mounts[1].sorce")
        );
        assert_eq!(key_path_at(text, 0).as_deref(), Some("mounts[0]"));
    }

    #[test]
    fn key_path_quoted_and_dotted() {
        let text = "[ \"tools\" ]\n\"expose\" = 1\nlimits . pids = 2\n";
        assert_eq!(key_path_at(text, 13).as_deref(), Some("tools.expose"));
        let offset = text.find("pids").unwrap();
        assert_eq!(
            key_path_at(text, offset).as_deref(),
            Some("tools.limits.pids")
        );
    }

    #[test]
    fn key_path_continuation_line_is_none() {
        let text = "args = [\n  1,\n]\n";
        assert_eq!(key_path_at(text, text.find('1').unwrap()), None);
    }

    #[test]
    fn unknown_field_message_parts() {
        assert_eq!(
            parse_unknown_field("unknown field `memroy`, expected `pids` or `memory`"),
            Some(("memroy".to_owned(), "pids or memory".to_owned()))
        );
        assert_eq!(parse_unknown_field("missing field `name`"), None);
    }

    #[test]
    fn plain_message_uses_toml_terms() {
        assert_eq!(
            plain_message("invalid type: string \"x\", expected i64"),
            "invalid type: string \"x\", expected an integer"
        );
        assert_eq!(
            plain_message("invalid string\nexpected `\"`"),
            "invalid string; expected `\"`"
        );
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: Option<String>,
        limits: Option<SampleLimits>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct SampleLimits {
        pids: Option<i64>,
        memory: Option<String>,
    }

    fn diagnose(text: &str) -> String {
        let error = toml::from_str::<Sample>(text).unwrap_err();
        TomlDiagnostic::new(&error, text).to_string()
    }

    #[test]
    fn diagnostic_unknown_key() {
        assert_eq!(
            diagnose("name = \"a\"\n[limits]\nmemroy = \"1M\"\n"),
            "unknown key \"limits.memroy\" at line 3; expected pids or memory"
        );
    }

    #[test]
    fn diagnostic_unknown_key_in_inline_table() {
        assert_eq!(
            diagnose("limits = { pids = 1, memroy = \"1M\" }\n"),
            "unknown key \"limits.memroy\" at line 1; expected pids or memory"
        );
        assert_eq!(
            diagnose("limits.memroy = \"1M\"\n"),
            "unknown key \"limits.memroy\" at line 1; expected pids or memory"
        );
    }

    #[test]
    fn diagnostic_wrong_type() {
        assert_eq!(
            diagnose("[limits]\npids = \"x\"\n"),
            "limits.pids: invalid type: string \"x\", expected an integer at line 2, column 8"
        );
    }

    #[test]
    fn diagnostic_syntax_error() {
        assert_eq!(
            diagnose("name = \n"),
            "name: invalid string; expected `\"`, `'` at line 1, column 8"
        );
    }
}
