//! The flow guard's rules: whether a call may carry data from another app of the session.
//!
//! The rules are pure functions of the session's provenance, the target tool and the arguments,
//! so they are tested without a hub.

use std::collections::HashSet;

/// The shortest verbatim run, in characters after collapsing whitespace, that counts as data
/// copied from an earlier result.
pub const MIN_VERBATIM_CHARS: usize = 16;

/// The switches of the two rules, both on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowRules {
    /// A session that read confidential data may not reach a destructive tool or an app with
    /// network egress without a decision.
    pub confidential: bool,
    /// Arguments that repeat text of another app's earlier result need a decision.
    pub verbatim: bool,
}

impl Default for FlowRules {
    fn default() -> Self {
        FlowRules {
            confidential: true,
            verbatim: true,
        }
    }
}

/// The rule that made a flow need a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Confidential,
    Verbatim,
    /// The hub itself passes the output of one app to another, such as a query step's input.
    Reference,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Confidential => "confidential",
            Rule::Verbatim => "verbatim",
            Rule::Reference => "reference",
        }
    }

    /// Describes why the rule fired, for error messages and approvers.
    pub fn explain(self, source: &str) -> String {
        match self {
            Rule::Confidential => format!("the session read confidential data from app {source:?}"),
            Rule::Verbatim => format!(
                "the arguments repeat at least {MIN_VERBATIM_CHARS} characters of a result from app {source:?}"
            ),
            Rule::Reference => format!("the query passes it data that app {source:?} returned or wrote"),
        }
    }
}

/// One earlier result of the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub app: String,
    /// Whether the app's manifest marks its data confidential.
    pub confidential: bool,
    /// The result's text with whitespace collapsed.
    pub text: String,
}

/// The tool a call is about to reach.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub app: &'a str,
    pub tool: &'a str,
    pub destructive: bool,
    pub egress: bool,
}

/// A flow from `source` into the target that needs a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub source: String,
    pub rule: Rule,
}

/// Returns the first flow into `target` that needs a decision, or `None` when the call may go
/// ahead. Results of the target app itself never count as a flow.
pub fn check(
    rules: FlowRules,
    session: &[Provenance],
    target: Target<'_>,
    arguments_json: &str,
) -> Option<Flow> {
    let others = || session.iter().filter(|result| result.app != target.app);
    if rules.confidential && (target.destructive || target.egress) {
        if let Some(result) = others().find(|result| result.confidential) {
            return Some(Flow {
                source: result.app.clone(),
                rule: Rule::Confidential,
            });
        }
    }
    if rules.verbatim {
        let arguments = collapse_whitespace(&argument_text(arguments_json));
        let windows = windows(&arguments);
        if !windows.is_empty() {
            if let Some(result) = others().find(|result| shares_window(&result.text, &windows)) {
                return Some(Flow {
                    source: result.app.clone(),
                    rule: Rule::Verbatim,
                });
            }
        }
    }
    None
}

/// Replaces every run of whitespace with one space and trims both ends.
pub fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Joins the string values of a JSON document, at any depth, with spaces. Text that is not JSON is
/// returned as it is, so that it is still checked.
pub fn argument_text(arguments_json: &str) -> String {
    fn walk(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::String(text) => out.push(text.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            serde_json::Value::Object(object) => object.values().for_each(|item| walk(item, out)),
            other => out.push(other.to_string()),
        }
    }
    match serde_json::from_str::<serde_json::Value>(arguments_json) {
        Ok(value) => {
            let mut parts = Vec::new();
            walk(&value, &mut parts);
            parts.join(" ")
        }
        Err(_) => arguments_json.to_string(),
    }
}

/// Returns the argument fields, as JSON Pointers such as "/notes", whose text repeats at least
/// [`MIN_VERBATIM_CHARS`] characters of a result from `source`. Arguments that are not a JSON
/// document count as one field, "".
pub fn verbatim_fields(session: &[Provenance], source: &str, arguments_json: &str) -> Vec<String> {
    let results: Vec<&Provenance> = session.iter().filter(|result| result.app == source).collect();
    let carries = |text: &str| {
        let text = collapse_whitespace(text);
        let windows = windows(&text);
        !windows.is_empty() && results.iter().any(|result| shares_window(&result.text, &windows))
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(arguments_json) else {
        return if carries(arguments_json) { vec![String::new()] } else { Vec::new() };
    };
    let mut found = Vec::new();
    for (pointer, text) in string_leaves(&value) {
        if carries(text) {
            found.push(pointer);
        }
    }
    found
}

/// Escapes an object key for use as one reference token of a JSON Pointer (RFC 6901).
pub fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Lists every string of a JSON value with its JSON Pointer, object keys in sorted order.
pub fn string_leaves(value: &serde_json::Value) -> Vec<(String, &str)> {
    fn walk<'a>(value: &'a serde_json::Value, pointer: String, out: &mut Vec<(String, &'a str)>) {
        match value {
            serde_json::Value::String(text) => out.push((pointer, text)),
            serde_json::Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    walk(item, format!("{pointer}/{index}"), out);
                }
            }
            serde_json::Value::Object(object) => {
                for (key, item) in object {
                    walk(item, format!("{pointer}/{}", pointer_token(key)), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, String::new(), &mut out);
    out
}

/// Collects every run of [`MIN_VERBATIM_CHARS`] characters in `text`.
fn windows(text: &str) -> HashSet<&str> {
    runs(text).collect()
}

fn shares_window(text: &str, windows: &HashSet<&str>) -> bool {
    runs(text).any(|run| windows.contains(run))
}

/// Yields every run of [`MIN_VERBATIM_CHARS`] consecutive characters of `text`, in order.
fn runs(text: &str) -> impl Iterator<Item = &str> {
    let starts: Vec<usize> = text
        .char_indices()
        .map(|(index, _)| index)
        .chain([text.len()])
        .collect();
    (0..starts.len().saturating_sub(MIN_VERBATIM_CHARS))
        .map(move |first| &text[starts[first]..starts[first + MIN_VERBATIM_CHARS]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(app: &str, confidential: bool, text: &str) -> Provenance {
        Provenance {
            app: app.into(),
            confidential,
            text: collapse_whitespace(text),
        }
    }

    fn target(destructive: bool) -> Target<'static> {
        Target {
            app: "repo_public",
            tool: "create_pr",
            destructive,
            egress: false,
        }
    }

    #[test]
    fn confidential_read_guards_destructive_tool() {
        let session = [result("repo_private", true, "hello")];
        let flow = check(FlowRules::default(), &session, target(true), "{}").expect("a flow");
        assert_eq!(
            flow,
            Flow {
                source: "repo_private".into(),
                rule: Rule::Confidential
            }
        );
        assert_eq!(
            check(FlowRules::default(), &session, target(false), "{}"),
            None
        );
    }

    #[test]
    fn confidential_rule_can_be_turned_off() {
        let session = [result("repo_private", true, "hello")];
        let rules = FlowRules {
            confidential: false,
            verbatim: true,
        };
        assert_eq!(check(rules, &session, target(true), "{}"), None);
    }

    #[test]
    fn verbatim_copy_across_whitespace_is_found() {
        let session = [result(
            "mail",
            false,
            "the launch code is   ALPHA-7\n TANGO today",
        )];
        let arguments = r#"{"body": "note: code is ALPHA-7 TANGO\ttoday"}"#;
        let flow = check(FlowRules::default(), &session, target(false), arguments).expect("a flow");
        assert_eq!(
            flow,
            Flow {
                source: "mail".into(),
                rule: Rule::Verbatim
            }
        );
    }

    #[test]
    fn verbatim_needs_sixteen_characters() {
        let session = [result("mail", false, "0123456789abcdefXYZ")];
        let short = r#"{"body": "0123456789abcde"}"#;
        assert_eq!(
            check(FlowRules::default(), &session, target(false), short),
            None
        );
        let long = r#"{"body": "0123456789abcdef"}"#;
        assert!(check(FlowRules::default(), &session, target(false), long).is_some());
    }

    #[test]
    fn own_results_are_no_flow() {
        let session = [result(
            "repo_public",
            true,
            "issue text that is long enough",
        )];
        let arguments = r#"{"body": "issue text that is long enough"}"#;
        assert_eq!(
            check(FlowRules::default(), &session, target(true), arguments),
            None
        );
    }

    #[test]
    fn verbatim_fields_name_the_carrying_fields() {
        let session = [
            result("health", true, "Booked for: chronic migraine MARKER-41"),
            result("notes", false, "Paris in spring is lovely"),
        ];
        let arguments = r#"{"to": "Paris", "notes": ["ok", "chronic migraine MARKER-41"], "a/b": "Paris in spring is lovely"}"#;
        assert_eq!(verbatim_fields(&session, "health", arguments), vec!["/notes/1".to_string()]);
        assert_eq!(verbatim_fields(&session, "notes", arguments), vec!["/a~1b".to_string()]);
        assert!(verbatim_fields(&session, "mail", arguments).is_empty());
    }

    #[test]
    fn multibyte_text_is_windowed_by_character() {
        let session = [result(
            "notes",
            false,
            "ünïcödé text wïth áccents everywhere",
        )];
        let arguments = r#"{"q": "text wïth áccents ev"}"#;
        assert!(check(FlowRules::default(), &session, target(false), arguments).is_some());
    }
}
