//! Aligned plain-text tables.

/// Two spaces between columns.
const COLUMN_GAP: &str = "  ";

/// The minimum width, in characters, of a truncated last column, however narrow the terminal.
const MIN_LAST_COLUMN: usize = 12;

/// A table with a header row. Columns are left-aligned and separated by two spaces, and only the
/// last column may be cut to fit a width.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|header| (*header).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row. Each cell is flattened to one line with `single_line`.
    ///
    /// # Panics
    ///
    /// Panics when the row's cell count differs from the header's, which is a bug in the caller.
    pub fn push(&mut self, row: Vec<String>) {
        assert_eq!(row.len(), self.headers.len(), "table row width");
        self.rows
            .push(row.iter().map(|cell| single_line(cell)).collect());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Renders the header and rows, one line each with a trailing newline. With `max_width`, the
    /// last column is cut so that each line fits, ending in "…", but it keeps at least
    /// `MIN_LAST_COLUMN` characters.
    ///
    /// Widths count `char`s, so East Asian wide characters and emoji misalign the columns.
    pub fn render(&self, max_width: Option<usize>) -> String {
        let widths = self.column_widths();
        let last = self.headers.len() - 1;
        let prefix_width: usize = widths[..last].iter().map(|w| w + COLUMN_GAP.len()).sum();
        let last_limit = max_width.map(|max| max.saturating_sub(prefix_width).max(MIN_LAST_COLUMN));

        let mut text = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (index, cell) in row.iter().enumerate() {
                if index == last {
                    match last_limit {
                        Some(limit) => line.push_str(&truncate(cell, limit)),
                        None => line.push_str(cell),
                    }
                } else {
                    line.push_str(cell);
                    let padding = widths[index] - cell.chars().count();
                    line.extend(std::iter::repeat_n(' ', padding));
                    line.push_str(COLUMN_GAP);
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }

    fn column_widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        widths
    }
}

/// Flattens text to one line for a table cell: each run of whitespace becomes one space, and other
/// control characters, such as the ESC of a terminal escape sequence, become U+FFFD. App-supplied
/// text then cannot break the table's layout or drive the terminal.
pub fn single_line(text: &str) -> String {
    let mut line = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.trim().chars() {
        if c.is_whitespace() {
            if !in_space {
                line.push(' ');
            }
            in_space = true;
            continue;
        }
        in_space = false;
        line.push(if c.is_control() { '\u{FFFD}' } else { c });
    }
    line
}

/// Cuts `text` to at most `limit` characters, ending in "…" when it was cut.
fn truncate(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(limit.saturating_sub(1)).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut table = Table::new(&["APP", "TOOL", "DESCRIPTION"]);
        table.push(vec![
            "notes".into(),
            "read".into(),
            "Read a note by its path".into(),
        ]);
        table.push(vec![
            "calendar".into(),
            "add_event".into(),
            "Add an event".into(),
        ]);
        table
    }

    #[test]
    fn columns_align_to_widest_cell() {
        let expected = "\
APP       TOOL       DESCRIPTION
notes     read       Read a note by its path
calendar  add_event  Add an event
";
        assert_eq!(sample().render(None), expected);
    }

    #[test]
    fn header_sets_minimum_width() {
        let mut table = Table::new(&["NAME", "STATE"]);
        table.push(vec!["a".into(), "ready".into()]);
        assert_eq!(table.render(None), "NAME  STATE\na     ready\n");
    }

    #[test]
    fn lines_have_no_trailing_spaces() {
        let mut table = Table::new(&["NAME", "DESCRIPTION"]);
        table.push(vec!["a".into(), String::new()]);
        assert_eq!(table.render(None), "NAME  DESCRIPTION\na\n");
    }

    #[test]
    fn last_column_cut_to_width() {
        let rendered = sample().render(Some(36));
        for line in rendered.lines() {
            assert!(line.chars().count() <= 36, "line too long: {line:?}");
        }
        assert!(
            rendered.contains("notes     read       Read a note by…\n"),
            "{rendered}"
        );
        assert!(rendered.contains("Add an event\n"), "{rendered}");
    }

    #[test]
    fn last_column_keeps_minimum_when_narrow() {
        let rendered = sample().render(Some(10));
        assert!(
            rendered.contains("notes     read       Read a note…\n"),
            "{rendered}"
        );
    }

    #[test]
    fn width_counts_characters_not_bytes() {
        let mut table = Table::new(&["APP", "NOTE"]);
        table.push(vec!["café".into(), "x".into()]);
        assert_eq!(table.render(None), "APP   NOTE\ncafé  x\n");
    }

    #[test]
    fn cells_are_flattened() {
        let mut table = Table::new(&["A", "B"]);
        table.push(vec!["x".into(), "line one\n  line\ttwo\u{1b}[31m".into()]);
        assert_eq!(
            table.render(None),
            "A  B\nx  line one line two\u{FFFD}[31m\n"
        );
    }

    #[test]
    fn single_line_trims_and_collapses() {
        assert_eq!(single_line("  a \r\n b  "), "a b");
        assert_eq!(single_line("bell\u{7}"), "bell\u{FFFD}");
    }

    #[test]
    fn truncate_marks_cut() {
        assert_eq!(truncate("abcdef", 6), "abcdef");
        assert_eq!(truncate("abcdefg", 6), "abcde…");
        assert_eq!(truncate("abcd efg", 6), "abcd…");
    }

    #[test]
    #[should_panic(expected = "table row width")]
    fn row_width_mismatch_panics() {
        Table::new(&["A", "B"]).push(vec!["only one".into()]);
    }
}
