//! Argument validation against a pinned catalog's input schemas, compiled once per pin.
//!
//! Schemas are compiled offline: a `$ref` to anything outside the schema fails to compile instead
//! of making the hub fetch a URL or read a file that an app named. `pattern` keywords use the
//! `regex` crate, whose matching time is linear in the input, so that an app's pattern cannot
//! make an agent's argument check slow.

use std::collections::HashMap;

use jsonschema::{PatternOptions, ValidationError, Validator};
use serde_json::Value;

use super::pin::Catalog;

/// The maximum number of schema violations one rejection lists.
const MAX_REPORTED_ERRORS: usize = 3;

/// The reason a call's arguments were rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The pinned catalog has no tool of that name.
    UnknownTool,
    /// The tool's input schema does not compile, so its arguments cannot be checked.
    UnusableSchema(String),
    /// The arguments violate the schema, or are not a JSON object.
    Invalid(String),
}

/// The compiled input schemas of one pinned catalog.
pub struct Validators {
    tools: HashMap<String, Result<Validator, String>>,
}

impl Validators {
    /// Compiles the input schema of every tool in `catalog`. A schema that fails to compile is
    /// kept as its error, so that calls to that tool are rejected and the others still work.
    pub fn compile(catalog: &Catalog) -> Validators {
        let options = jsonschema::options().offline().with_pattern_options(PatternOptions::regex());
        let tools = catalog
            .tools
            .iter()
            .map(|tool| {
                let compiled = options.build(&tool.input_schema).map_err(|error| error.to_string());
                (tool.name.clone(), compiled)
            })
            .collect();
        Validators { tools }
    }

    /// Returns the compile error of each tool whose schema does not compile, sorted by tool name.
    pub fn unusable(&self) -> Vec<(&str, &str)> {
        let mut unusable: Vec<(&str, &str)> = self
            .tools
            .iter()
            .filter_map(|(name, compiled)| compiled.as_ref().err().map(|error| (name.as_str(), error.as_str())))
            .collect();
        unusable.sort_unstable();
        unusable
    }

    /// Checks `arguments_json` against the input schema of `tool`.
    pub fn check(&self, tool: &str, arguments_json: &str) -> Result<(), Rejection> {
        let compiled = self.tools.get(tool).ok_or(Rejection::UnknownTool)?;
        let validator = compiled.as_ref().map_err(|error| Rejection::UnusableSchema(error.clone()))?;
        let arguments: Value = serde_json::from_str(arguments_json)
            .map_err(|error| Rejection::Invalid(format!("the arguments are not valid JSON: {error}")))?;
        if !arguments.is_object() {
            return Err(Rejection::Invalid(format!(
                "the arguments must be a JSON object, not {}",
                json_type(&arguments)
            )));
        }
        let errors: Vec<ValidationError<'_>> = validator.iter_errors(&arguments).collect();
        if errors.is_empty() {
            return Ok(());
        }
        let mut reasons: Vec<String> = errors.iter().take(MAX_REPORTED_ERRORS).map(describe).collect();
        if errors.len() > MAX_REPORTED_ERRORS {
            reasons.push(format!("{} more", errors.len() - MAX_REPORTED_ERRORS));
        }
        Err(Rejection::Invalid(reasons.join("; ")))
    }
}

/// Describes one violation with the JSON pointer of the value it concerns. A missing required
/// property is reported at the pointer where it belongs.
fn describe(error: &ValidationError<'_>) -> String {
    let mut path = error.instance_path().as_str().to_string();
    if let jsonschema::error::ValidationErrorKind::Required { property } = error.kind() {
        if let Some(name) = property.as_str() {
            path.push('/');
            path.push_str(&crate::flow::guard::pointer_token(name));
        }
    }
    if path.is_empty() {
        format!("arguments: {error}")
    } else {
        format!("argument {path}: {error}")
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::pin::PinnedTool;
    use serde_json::json;

    fn validators(schema: Value) -> Validators {
        let catalog = Catalog::new(vec![PinnedTool::new("book".into(), String::new(), &schema)]).expect("catalog");
        Validators::compile(&catalog)
    }

    fn booking_schema() -> Value {
        json!({
            "type": "object",
            "properties": {"start": {"type": "string"}, "minutes": {"type": "integer", "minimum": 1}},
            "required": ["start"]
        })
    }

    #[test]
    fn valid_arguments_pass() {
        assert_eq!(validators(booking_schema()).check("book", r#"{"start": "09:00", "minutes": 30}"#), Ok(()));
    }

    #[test]
    fn wrong_type_names_the_path_and_the_type() {
        let rejection = validators(booking_schema()).check("book", r#"{"start": 5}"#);
        assert_eq!(rejection, Err(Rejection::Invalid(r#"argument /start: 5 is not of type "string""#.into())));
    }

    #[test]
    fn missing_required_property_names_its_path() {
        let rejection = validators(booking_schema()).check("book", r#"{"minutes": 30}"#);
        let Err(Rejection::Invalid(reason)) = rejection else { panic!("expected a rejection, got {rejection:?}") };
        assert!(reason.starts_with("argument /start: "), "{reason}");
        assert!(reason.contains("required"), "{reason}");
    }

    #[test]
    fn several_violations_are_listed() {
        let rejection = validators(booking_schema()).check("book", r#"{"start": 1, "minutes": 0}"#);
        let Err(Rejection::Invalid(reason)) = rejection else { panic!("expected a rejection, got {rejection:?}") };
        assert!(reason.contains("argument /start:"), "{reason}");
        assert!(reason.contains("argument /minutes:"), "{reason}");
    }

    #[test]
    fn arguments_must_be_an_object() {
        let rejection = validators(booking_schema()).check("book", "[1]");
        assert_eq!(rejection, Err(Rejection::Invalid("the arguments must be a JSON object, not an array".into())));
        let rejection = validators(booking_schema()).check("book", "{");
        assert!(matches!(rejection, Err(Rejection::Invalid(reason)) if reason.contains("not valid JSON")));
    }

    #[test]
    fn unknown_tool_is_reported() {
        assert_eq!(validators(booking_schema()).check("cancel", "{}"), Err(Rejection::UnknownTool));
    }

    #[test]
    fn remote_reference_does_not_compile() {
        let compiled = validators(json!({"$ref": "http://127.0.0.1:9/schema.json"}));
        assert_eq!(compiled.unusable().len(), 1);
        assert!(matches!(compiled.check("book", "{}"), Err(Rejection::UnusableSchema(_))));
    }

    #[test]
    fn invalid_schema_rejects_calls() {
        let compiled = validators(json!({"type": "no-such-type"}));
        let rejection = compiled.check("book", "{}");
        assert!(matches!(rejection, Err(Rejection::UnusableSchema(_))), "{rejection:?}");
    }

    #[test]
    fn property_names_are_escaped_in_paths() {
        let schema = json!({"type": "object", "required": ["a/b"]});
        let rejection = validators(schema).check("book", "{}");
        let Err(Rejection::Invalid(reason)) = rejection else { panic!("expected a rejection, got {rejection:?}") };
        assert!(reason.starts_with("argument /a~1b: "), "{reason}");
    }
}
