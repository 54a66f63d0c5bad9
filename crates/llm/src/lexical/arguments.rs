//! Tool arguments from the text of a query: `key=value` pairs, or the whole text for a tool that
//! takes one string.

use serde_json::{Map, Value};

/// A query split into its `key=value` pairs and the remaining words.
#[derive(Debug, Default, PartialEq)]
pub struct SplitQuery {
    pub pairs: Vec<(String, String)>,
    /// The words that are not part of a pair, joined by single spaces.
    pub text: String,
}

/// Splits a query into whitespace-separated words, where double or single quotes keep spaces in a
/// value (`start="Main Street"`), and sorts the words into pairs and remaining text.
pub fn split_query(query: &str) -> SplitQuery {
    let mut split = SplitQuery::default();
    let mut words = Vec::new();
    for word in words_of(query) {
        match word.split_once('=') {
            Some((key, value)) if is_key(key) => {
                split.pairs.push((key.to_string(), value.to_string()))
            }
            _ => words.push(word),
        }
    }
    split.text = words.join(" ");
    split
}

fn is_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Splits on whitespace outside quotes and drops the quote characters.
fn words_of(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in text.chars() {
        match (quote, c) {
            (Some(open), c) if c == open => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Builds the arguments object for a tool from its JSON Schema. Returns the reason when the query
/// does not give every required parameter.
pub fn fill_arguments(tool: &str, schema: &Value, query: &SplitQuery) -> Result<Value, String> {
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut arguments = Map::new();
    for (key, value) in &query.pairs {
        let Some(property) = properties.get(key) else {
            let known: Vec<&str> = properties.keys().map(String::as_str).collect();
            return Err(format!(
                "tool {tool} has no parameter {key:?}; its parameters are {known:?}"
            ));
        };
        arguments.insert(key.clone(), typed(key, value, property)?);
    }
    if query.pairs.is_empty() && properties.len() == 1 {
        let (name, property) = properties.iter().next().expect("one property");
        let is_string = property
            .get("type")
            .and_then(Value::as_str)
            .is_none_or(|kind| kind == "string");
        if is_string && !query.text.is_empty() {
            arguments.insert(name.clone(), Value::from(query.text.as_str()));
        }
    }
    let missing: Vec<&str> = required
        .into_iter()
        .filter(|name| !arguments.contains_key(*name))
        .collect();
    if !missing.is_empty() {
        let example: Vec<String> = missing.iter().map(|name| format!("{name}=VALUE")).collect();
        return Err(format!(
            "tool {tool} needs {}; add {} to the query",
            missing.join(" and "),
            example.join(" ")
        ));
    }
    Ok(Value::Object(arguments))
}

/// Converts a pair's text to the type its schema property declares.
fn typed(key: &str, value: &str, property: &Value) -> Result<Value, String> {
    let kind = property
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    let parsed = match kind {
        "integer" => value.parse::<i64>().ok().map(Value::from),
        "number" => value.parse::<f64>().ok().map(Value::from),
        "boolean" => value.parse::<bool>().ok().map(Value::from),
        "array" | "object" => {
            serde_json::from_str::<Value>(value)
                .ok()
                .filter(|parsed| match kind {
                    "array" => parsed.is_array(),
                    _ => parsed.is_object(),
                })
        }
        _ => Some(Value::from(value)),
    };
    parsed.ok_or_else(|| format!("{key}={value} is not a valid {kind}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pairs_with_quotes_are_split_from_text() {
        let split = split_query("price a ride start=\"Main Street\" end='Elm Avenue' now");
        assert_eq!(
            split.pairs,
            vec![
                ("start".into(), "Main Street".into()),
                ("end".into(), "Elm Avenue".into())
            ]
        );
        assert_eq!(split.text, "price a ride now");
    }

    #[test]
    fn single_string_parameter_takes_the_text() {
        let schema = json!({"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]});
        let arguments = fill_arguments(
            "search_notes",
            &schema,
            &split_query("search my notes for invoice"),
        );
        assert_eq!(
            arguments.expect("arguments"),
            json!({"query": "search my notes for invoice"})
        );
    }

    #[test]
    fn pairs_are_typed_by_the_schema() {
        let schema = json!({"properties": {"n": {"type": "integer"}, "x": {"type": "number"}, "on": {"type": "boolean"}}});
        let arguments = fill_arguments("t", &schema, &split_query("n=3 x=1.5 on=true"));
        assert_eq!(
            arguments.expect("arguments"),
            json!({"n": 3, "x": 1.5, "on": true})
        );
        let error =
            fill_arguments("t", &schema, &split_query("n=three")).expect_err("not an integer");
        assert_eq!(error, "n=three is not a valid integer");
    }

    #[test]
    fn missing_required_parameters_are_named() {
        let schema = json!({"properties": {"start": {"type": "string"}, "end": {"type": "string"}}, "required": ["start", "end"]});
        let error = fill_arguments("estimate", &schema, &split_query("price start=Main"))
            .expect_err("end missing");
        assert_eq!(error, "tool estimate needs end; add end=VALUE to the query");
    }

    #[test]
    fn unknown_key_is_rejected() {
        let schema = json!({"properties": {"query": {"type": "string"}}});
        let error =
            fill_arguments("search", &schema, &split_query("colour=red")).expect_err("unknown key");
        assert!(error.contains("no parameter \"colour\""), "{error}");
    }
}
