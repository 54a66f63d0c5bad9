//! The differences between a pinned catalog and the one an app offered: tools added, tools removed,
//! and for each changed tool its old and new description and input schema with line diffs.

use std::time::Duration;

use similar::{ChangeTag, TextDiff};

use super::pin::{Catalog, PinnedTool};

/// Lines of unchanged text shown around each changed line.
const CONTEXT_LINES: usize = 3;
/// The time one line diff may take before it falls back to a coarser diff. A description or
/// schema comes from the app, so its size is not bounded by anything the hub controls.
const DIFF_TIMEOUT: Duration = Duration::from_millis(500);

/// The differences between two catalogs, each list sorted by tool name.
#[derive(Debug, Default, PartialEq)]
pub struct CatalogDiff {
    pub added: Vec<PinnedTool>,
    pub removed: Vec<PinnedTool>,
    pub changed: Vec<ToolChange>,
}

impl CatalogDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// One tool whose description or input schema changed.
#[derive(Debug, PartialEq)]
pub struct ToolChange {
    pub old: PinnedTool,
    pub new: PinnedTool,
    /// A line diff of the descriptions, empty when they are equal.
    pub description_diff: String,
    /// A line diff of the indented schemas, empty when they are equal.
    pub input_schema_diff: String,
}

/// Compares the pinned catalog `old` with the offered catalog `new`.
pub fn diff(old: &Catalog, new: &Catalog) -> CatalogDiff {
    let mut result = CatalogDiff::default();
    for tool in &new.tools {
        match old.tool(&tool.name) {
            None => result.added.push(tool.clone()),
            Some(previous) if previous.sha256 != tool.sha256 => result.changed.push(ToolChange {
                old: previous.clone(),
                new: tool.clone(),
                description_diff: line_diff(&previous.description, &tool.description),
                input_schema_diff: line_diff(&previous.schema_text(), &tool.schema_text()),
            }),
            Some(_) => {}
        }
    }
    result.removed = old.tools.iter().filter(|tool| new.tool(&tool.name).is_none()).cloned().collect();
    result
}

/// Returns a line diff of two texts: "-" before a removed line, "+" before an added one and two
/// spaces before a context line, with "..." between distant groups of changes. Returns an
/// empty string for equal texts.
pub fn line_diff(old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    let diff = TextDiff::configure().timeout(DIFF_TIMEOUT).diff_lines(old, new);
    let mut text = String::new();
    for (index, group) in diff.grouped_ops(CONTEXT_LINES).iter().enumerate() {
        if index > 0 {
            text.push_str("...\n");
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let sign = match change.tag() {
                    ChangeTag::Delete => "- ",
                    ChangeTag::Insert => "+ ",
                    ChangeTag::Equal => "  ",
                };
                text.push_str(sign);
                text.push_str(change.value().trim_end_matches(['\n', '\r']));
                text.push('\n');
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn tool(name: &str, description: &str, schema: &Value) -> PinnedTool {
        PinnedTool::new(name.into(), description.into(), schema)
    }

    fn catalog(tools: Vec<PinnedTool>) -> Catalog {
        Catalog::new(tools).expect("catalog")
    }

    #[test]
    fn equal_catalogs_have_no_diff() {
        let schema = json!({"type": "object"});
        let pinned = catalog(vec![tool("read", "Reads.", &schema)]);
        assert!(diff(&pinned, &pinned.clone()).is_empty());
    }

    #[test]
    fn added_removed_and_changed_tools() {
        let schema = json!({"type": "object"});
        let old = catalog(vec![tool("read", "Reads a note.", &schema), tool("drop", "Deletes a note.", &schema)]);
        let new = catalog(vec![tool("read", "Reads a note and mails it.", &schema), tool("send", "Sends.", &schema)]);
        let result = diff(&old, &new);

        let added: Vec<&str> = result.added.iter().map(|tool| tool.name.as_str()).collect();
        let removed: Vec<&str> = result.removed.iter().map(|tool| tool.name.as_str()).collect();
        assert_eq!(added, ["send"]);
        assert_eq!(removed, ["drop"]);
        assert_eq!(result.changed.len(), 1);
        let change = &result.changed[0];
        assert_eq!(change.old.description, "Reads a note.");
        assert_eq!(change.new.description, "Reads a note and mails it.");
        assert_eq!(change.description_diff, "- Reads a note.\n+ Reads a note and mails it.\n");
        assert_eq!(change.input_schema_diff, "");
    }

    #[test]
    fn schema_change_shows_the_changed_lines() {
        let old_schema = json!({"type": "object", "properties": {"start": {"type": "string"}}});
        let new_schema = json!({"type": "object", "properties": {"start": {"type": "integer"}}});
        let result = diff(&catalog(vec![tool("book", "Books.", &old_schema)]), &catalog(vec![tool("book", "Books.", &new_schema)]));
        let change = &result.changed[0];
        assert_eq!(change.description_diff, "");
        assert!(change.input_schema_diff.contains("-       \"type\": \"string\""), "{}", change.input_schema_diff);
        assert!(change.input_schema_diff.contains("+       \"type\": \"integer\""), "{}", change.input_schema_diff);
    }

    #[test]
    fn long_diff_elides_distant_lines() {
        let old: String = (1..=20).map(|line| format!("line {line}\n")).collect();
        let new = old.replace("line 2\n", "line two\n").replace("line 19\n", "line nineteen\n");
        let text = line_diff(&old, &new);
        let expected = "  line 1\n- line 2\n+ line two\n  line 3\n  line 4\n  line 5\n...\n  line 16\n  line 17\n  line 18\n- line 19\n+ line nineteen\n  line 20\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn text_without_final_newline() {
        assert_eq!(line_diff("a\nb", "a\nc"), "  a\n- b\n+ c\n");
    }
}
