//! The apps and tools a query may use, and their names as LLM functions.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bulkhead_llm::ToolSpec;
use bulkhead_proto::v1::ToolDescriptor;
use serde_json::Value;

use crate::error::HubError;
use crate::hub::Hub;
use crate::registry::AppEntry;

/// The maximum length of a function name that the OpenAI API accepts.
const MAX_FUNCTION_NAME: usize = 64;

/// One app with its exposed tools.
#[derive(Clone)]
pub struct CatalogApp {
    pub entry: AppEntry,
    pub tools: Vec<ToolDescriptor>,
}

impl CatalogApp {
    pub fn name(&self) -> &str {
        &self.entry.manifest.name
    }

    pub fn has_tool(&self, tool: &str) -> bool {
        self.tools.iter().any(|known| known.name == tool)
    }
}

/// The apps of a query, in name order.
pub struct Catalog {
    pub apps: Vec<CatalogApp>,
}

impl Catalog {
    /// Reads the exposed tools of every app in `scope`, or of every registered app when `scope` is
    /// empty, starting their spokes in parallel. An app whose spoke fails to start is left out and
    /// logged, so one broken app does not stop every query.
    pub async fn gather(hub: &Arc<Hub>, scope: &[String]) -> Result<Catalog, HubError> {
        let entries = if scope.is_empty() {
            hub.apps().await.0
        } else {
            let mut entries = Vec::with_capacity(scope.len());
            for name in scope {
                entries.push(hub.app(name).await?);
            }
            entries
        };
        let mut tasks = tokio::task::JoinSet::new();
        for entry in entries {
            let hub = hub.clone();
            tasks.spawn(async move {
                let tools = hub.pinned_tools(&entry).await;
                (entry, tools)
            });
        }
        let mut apps = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let Ok((entry, tools)) = joined else { continue };
            match tools {
                Ok(tools) => {
                    let manifest = &entry.manifest;
                    let tools = tools
                        .into_iter()
                        .filter(|tool| manifest.is_exposed(&tool.name))
                        .collect();
                    apps.push(CatalogApp { entry, tools });
                }
                Err(error) => {
                    tracing::warn!(app = %entry.manifest.name, %error, "leaving an app out of the query catalog");
                }
            }
        }
        apps.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(Catalog { apps })
    }

    pub fn app(&self, name: &str) -> Option<&CatalogApp> {
        self.apps.iter().find(|app| app.name() == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.apps.iter().map(CatalogApp::name).collect()
    }
}

/// LLM function names mapped back to the app and tool they stand for.
#[derive(Default)]
pub struct Functions {
    pub specs: Vec<ToolSpec>,
    targets: BTreeMap<String, (String, String)>,
}

impl Functions {
    /// Adds a tool under a function name made from `prefix` and the tool name.
    pub fn add(&mut self, app: &str, prefix: &str, tool: &ToolDescriptor, description: String) {
        let taken: HashSet<&str> = self.targets.keys().map(String::as_str).collect();
        let name = function_name(&format!("{prefix}{}", tool.name), &taken);
        let parameters = serde_json::from_str(&tool.input_schema_json)
            .unwrap_or_else(|_| serde_json::json!({"type": "object"}));
        self.specs.push(ToolSpec {
            name: name.clone(),
            description,
            parameters,
        });
        self.targets
            .insert(name, (app.to_string(), tool.name.clone()));
    }

    pub fn add_spec(&mut self, spec: ToolSpec) {
        self.specs.push(spec);
    }

    /// Returns the app and tool behind a function name.
    pub fn target(&self, function: &str) -> Option<(&str, &str)> {
        self.targets
            .get(function)
            .map(|(app, tool)| (app.as_str(), tool.as_str()))
    }

    /// Builds the planner's functions: every tool of every app, named APP__TOOL, with the app's
    /// description in front of the tool's.
    pub fn for_planner(catalog: &Catalog) -> Functions {
        let mut functions = Functions::default();
        for app in &catalog.apps {
            for tool in &app.tools {
                let description = format!(
                    "[app {}: {}] {}",
                    app.name(),
                    app.entry.manifest.description,
                    tool.description
                );
                functions.add(app.name(), &format!("{}__", app.name()), tool, description);
            }
        }
        functions
    }
}

/// Makes a valid, unused function name: characters outside a-z, A-Z, 0-9, _ and - become _, the
/// name is cut to 64 characters, and a number is appended when it is taken.
pub fn function_name(wanted: &str, taken: &HashSet<&str>) -> String {
    let clean: String = wanted
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_FUNCTION_NAME)
        .collect();
    if !taken.contains(clean.as_str()) {
        return clean;
    }
    (2..)
        .map(|n| {
            let suffix = format!("_{n}");
            let keep = MAX_FUNCTION_NAME - suffix.len();
            format!("{}{suffix}", clean.chars().take(keep).collect::<String>())
        })
        .find(|name| !taken.contains(name.as_str()))
        .unwrap_or(clean)
}

/// Parses a tool's schema text for a prompt, or an empty object schema when it is not JSON.
pub fn schema_value(tool: &ToolDescriptor) -> Value {
    serde_json::from_str(&tool.input_schema_json)
        .unwrap_or_else(|_| serde_json::json!({"type": "object"}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_and_made_unique() {
        let mut taken = HashSet::new();
        assert_eq!(
            function_name("notes__search.notes", &taken),
            "notes__search_notes"
        );
        taken.insert("notes__search_notes");
        assert_eq!(
            function_name("notes__search/notes", &taken),
            "notes__search_notes_2"
        );
        let long = "x".repeat(100);
        assert_eq!(function_name(&long, &HashSet::new()).len(), 64);
    }
}
