//! A tool catalog as the hub pins it: every tool's name, description and input schema, a SHA-256
//! per tool and one for the whole catalog.
//!
//! A tool's digest is the SHA-256 of the JSON object `{"description", "input_schema", "name"}`
//! written with sorted keys and no whitespace, so the order in which an app writes its schema's
//! keys does not change the digest. The catalog's digest is the SHA-256 of the JSON array of its
//! tool digests, in the order of the tool names.

use bulkhead_proto::v1::ToolDescriptor;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::CatalogError;

/// One tool of a catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinnedTool {
    pub name: String,
    pub description: String,
    /// The input JSON Schema, with its object keys sorted.
    pub input_schema: Value,
    /// The tool's digest, in lowercase hex.
    pub sha256: String,
}

impl PinnedTool {
    pub fn new(name: String, description: String, input_schema: &Value) -> PinnedTool {
        let input_schema = canonical(input_schema);
        let sha256 = tool_digest(&name, &description, &input_schema);
        PinnedTool { name, description, input_schema, sha256 }
    }

    /// Returns the input schema as indented JSON with sorted keys, the form that diffs compare.
    pub fn schema_text(&self) -> String {
        serde_json::to_string_pretty(&self.input_schema).unwrap_or_else(|_| self.input_schema.to_string())
    }
}

/// The tools of one app, sorted by name, and the catalog's digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// The catalog's digest, in lowercase hex.
    pub sha256: String,
    pub tools: Vec<PinnedTool>,
}

impl Catalog {
    /// Builds a catalog from tools in any order. Two tools with one name are rejected, because
    /// a call could not say which of them it means.
    pub fn new(mut tools: Vec<PinnedTool>) -> Result<Catalog, String> {
        tools.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(pair) = tools.windows(2).find(|pair| pair[0].name == pair[1].name) {
            return Err(format!("the app lists the tool {:?} twice", pair[0].name));
        }
        let sha256 = catalog_digest(&tools);
        Ok(Catalog { sha256, tools })
    }

    /// Builds a catalog from the descriptors a spoke returned for `app`.
    pub fn from_descriptors(app: &str, descriptors: &[ToolDescriptor]) -> Result<Catalog, CatalogError> {
        let invalid = |reason: String| CatalogError::InvalidCatalog { app: app.to_string(), reason };
        let mut tools = Vec::with_capacity(descriptors.len());
        for descriptor in descriptors {
            let schema: Value = serde_json::from_str(&descriptor.input_schema_json).map_err(|error| {
                invalid(format!("the input schema of tool {:?} is not valid JSON: {error}", descriptor.name))
            })?;
            tools.push(PinnedTool::new(descriptor.name.clone(), descriptor.description.clone(), &schema));
        }
        Catalog::new(tools).map_err(invalid)
    }

    pub fn tool(&self, name: &str) -> Option<&PinnedTool> {
        self.tools.binary_search_by(|tool| tool.name.as_str().cmp(name)).ok().map(|index| &self.tools[index])
    }

    /// Returns the tools as the descriptors that ListTools serves.
    pub fn descriptors(&self) -> Vec<ToolDescriptor> {
        self.tools
            .iter()
            .map(|tool| ToolDescriptor {
                name: tool.name.clone(),
                description: tool.description.clone(),
                input_schema_json: tool.input_schema.to_string(),
            })
            .collect()
    }

    /// Checks that the tools are sorted and unique and that every digest matches the content, for
    /// a catalog read back from disk. Returns the first mismatch.
    pub fn verify(&self) -> Result<(), String> {
        if self.tools.windows(2).any(|pair| pair[0].name >= pair[1].name) {
            return Err("the tools are not sorted by name, or a name repeats".into());
        }
        for tool in &self.tools {
            let expected = tool_digest(&tool.name, &tool.description, &canonical(&tool.input_schema));
            if expected != tool.sha256 {
                return Err(format!("the digest of tool {:?} does not match its content", tool.name));
            }
        }
        if catalog_digest(&self.tools) != self.sha256 {
            return Err("the catalog digest does not match its tools".into());
        }
        Ok(())
    }
}

/// Returns `value` with the keys of every object in sorted order. serde_json keeps insertion
/// order when a dependency enables its `preserve_order` feature, so the keys are inserted sorted.
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut sorted = Map::new();
            for key in keys {
                sorted.insert(key.clone(), canonical(&map[key]));
            }
            Value::Object(sorted)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn tool_digest(name: &str, description: &str, canonical_schema: &Value) -> String {
    let mut object = Map::new();
    object.insert("description".into(), Value::from(description));
    object.insert("input_schema".into(), canonical_schema.clone());
    object.insert("name".into(), Value::from(name));
    hex_sha256(Value::Object(object).to_string().as_bytes())
}

fn catalog_digest(tools: &[PinnedTool]) -> String {
    let digests: Vec<Value> = tools.iter().map(|tool| Value::from(tool.sha256.as_str())).collect();
    hex_sha256(Value::Array(digests).to_string().as_bytes())
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn descriptor(name: &str, description: &str, schema: &str) -> ToolDescriptor {
        ToolDescriptor { name: name.into(), description: description.into(), input_schema_json: schema.into() }
    }

    #[test]
    fn key_order_does_not_change_digests() {
        let a = Catalog::from_descriptors("app", &[descriptor("t", "d", r#"{"type":"object","properties":{}}"#)]);
        let b = Catalog::from_descriptors("app", &[descriptor("t", "d", r#"{"properties":{},"type":"object"}"#)]);
        assert_eq!(a.expect("a").sha256, b.expect("b").sha256);
    }

    #[test]
    fn tool_order_does_not_change_digest() {
        let schema = r#"{"type":"object"}"#;
        let a = Catalog::from_descriptors("app", &[descriptor("a", "", schema), descriptor("b", "", schema)]);
        let b = Catalog::from_descriptors("app", &[descriptor("b", "", schema), descriptor("a", "", schema)]);
        assert_eq!(a.expect("a"), b.expect("b"));
    }

    #[test]
    fn description_change_changes_digests() {
        let schema = json!({"type": "object"});
        let old = Catalog::new(vec![PinnedTool::new("t".into(), "Reads a note.".into(), &schema)]).expect("old");
        let new = Catalog::new(vec![PinnedTool::new("t".into(), "Reads a note!".into(), &schema)]).expect("new");
        assert_ne!(old.tools[0].sha256, new.tools[0].sha256);
        assert_ne!(old.sha256, new.sha256);
    }

    #[test]
    fn duplicate_tool_names_are_rejected() {
        let schema = r#"{"type":"object"}"#;
        let error = Catalog::from_descriptors("app", &[descriptor("t", "one", schema), descriptor("t", "two", schema)]);
        let message = error.expect_err("duplicates").to_string();
        assert!(message.contains("\"t\" twice"), "{message}");
    }

    #[test]
    fn invalid_schema_json_names_the_tool() {
        let error = Catalog::from_descriptors("app", &[descriptor("t", "", "{not json")]).expect_err("invalid");
        assert!(error.to_string().contains("tool \"t\""), "{error}");
    }

    #[test]
    fn verify_detects_an_edited_description() {
        let mut catalog =
            Catalog::new(vec![PinnedTool::new("t".into(), "d".into(), &json!({"type": "object"}))]).expect("catalog");
        assert_eq!(catalog.verify(), Ok(()));
        catalog.tools[0].description = "edited".into();
        let error = catalog.verify().expect_err("edited");
        assert!(error.contains("tool \"t\""), "{error}");
    }

    #[test]
    fn tool_lookup_by_name() {
        let schema = json!({});
        let tools = ["c", "a", "b"].map(|name| PinnedTool::new(name.into(), String::new(), &schema)).to_vec();
        let catalog = Catalog::new(tools).expect("catalog");
        assert_eq!(catalog.tool("b").map(|tool| tool.name.as_str()), Some("b"));
        assert!(catalog.tool("d").is_none());
    }
}
