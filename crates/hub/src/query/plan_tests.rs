use std::path::{Path, PathBuf};
use std::sync::Arc;

use bulkhead_proto::v1::ToolDescriptor;
use serde_json::json;

use super::*;
use crate::manifest::Manifest;
use crate::query::catalog::CatalogApp;
use crate::query::memory::StepRecord;
use crate::registry::{AppEntry, Origin};

fn app(name: &str, tools: &[&str]) -> CatalogApp {
    let text =
        format!("name = \"{name}\"\ndescription = \"Test app {name}.\"\ncommand = \"/bin/true\"\n");
    let manifest = Manifest::from_toml(&text, Path::new("test.toml")).expect("valid manifest");
    let entry = AppEntry {
        manifest: Arc::new(manifest),
        origin: Origin::Registered,
        path: PathBuf::from("test.toml"),
        host_id: 0,
    };
    let tools = tools
        .iter()
        .map(|tool| ToolDescriptor {
            name: tool.to_string(),
            description: String::new(),
            input_schema_json: "{}".into(),
        })
        .collect();
    CatalogApp { entry, tools }
}

fn catalog() -> Catalog {
    Catalog {
        apps: vec![
            app("metro_hail", &["estimate"]),
            app("notes", &["add_note"]),
        ],
    }
}

fn parse_plan(value: serde_json::Value) -> Result<Plan, PlanError> {
    parse(&value.to_string(), &catalog(), &[])
}

#[test]
fn tool_and_instruction_steps_parse() {
    let plan = parse_plan(json!({"steps": [
        {"id": "s1", "app": "metro_hail", "tool": "estimate", "arguments": {"start": "A", "end": "B"}},
        {"id": "s2", "app": "notes", "instruction": "Save the fare {{s1}}."},
    ], "answer": "Saved {{s1}}."}))
    .expect("valid plan");
    assert_eq!(plan.steps.len(), 2);
    assert_eq!(plan.steps[1].inputs, vec!["s1".to_string()]);
    assert_eq!(plan.answer.as_deref(), Some("Saved {{s1}}."));
    assert!(matches!(&plan.steps[0].action, Action::Tool { tool, .. } if tool == "estimate"));
}

#[test]
fn fenced_json_is_accepted() {
    let text = "Here is the plan:\n```json\n{\"steps\": [{\"id\": \"s1\", \"app\": \"notes\", \"tool\": \"add_note\"}]}\n```";
    let plan = parse(text, &catalog(), &[]).expect("plan in a fence");
    assert_eq!(plan.steps[0].app, "notes");
}

#[test]
fn invalid_json_is_rejected() {
    let error = parse("{\"steps\": [", &catalog(), &[]).expect_err("truncated");
    assert!(matches!(error, PlanError::Json(_)), "{error}");
    let error = parse("I cannot help with that.", &catalog(), &[]).expect_err("prose");
    assert!(error.to_string().contains("no JSON object"), "{error}");
}

#[test]
fn unknown_app_and_tool_are_named() {
    let error = parse_plan(json!({"steps": [{"id": "s1", "app": "uber", "tool": "estimate"}]}))
        .expect_err("unknown app");
    assert_eq!(
        error.to_string(),
        "step s1 names the unknown app \"uber\"; the apps are [\"metro_hail\", \"notes\"]"
    );
    let error = parse_plan(json!({"steps": [{"id": "s1", "app": "notes", "tool": "delete_all"}]}))
        .expect_err("unknown tool");
    assert!(
        matches!(error, PlanError::UnknownTool { ref tool, .. } if tool == "delete_all"),
        "{error}"
    );
}

#[test]
fn cycle_is_rejected_with_its_steps() {
    let error = parse_plan(json!({"steps": [
        {"id": "a", "app": "notes", "instruction": "use {{b}}"},
        {"id": "b", "app": "notes", "instruction": "use {{a}}"},
        {"id": "c", "app": "notes", "tool": "add_note"},
    ]}))
    .expect_err("cycle");
    assert_eq!(error, PlanError::Cycle(vec!["a".into(), "b".into()]));
}

#[test]
fn self_reference_and_unknown_input_are_rejected() {
    let error =
        parse_plan(json!({"steps": [{"id": "a", "app": "notes", "instruction": "use {{a}}"}]}))
            .expect_err("self");
    assert!(matches!(error, PlanError::UnknownInput { .. }), "{error}");
    let error = parse_plan(
        json!({"steps": [{"id": "a", "app": "notes", "tool": "add_note", "inputs": ["zz"]}]}),
    )
    .expect_err("unknown");
    assert!(error.to_string().contains("\"zz\""), "{error}");
}

#[test]
fn malformed_steps_are_rejected() {
    let cases = [
        (json!({"steps": []}), "no steps"),
        (json!({"plan": []}), "no \"steps\" array"),
        (
            json!({"steps": [{"id": "s1", "app": "notes"}]}),
            "neither a tool nor an instruction",
        ),
        (
            json!({"steps": [{"id": "s1", "app": "notes", "tool": "add_note", "instruction": "x"}]}),
            "both a tool and an instruction",
        ),
        (
            json!({"steps": [{"id": "s 1", "app": "notes", "tool": "add_note"}]}),
            "letters, digits",
        ),
        (
            json!({"steps": [{"id": "s1", "app": "notes", "tool": "add_note", "arguments": [1]}]}),
            "must be a JSON object",
        ),
        (
            json!({"steps": [{"id": "s1", "app": "notes", "tool": "add_note"}, {"id": "s1", "app": "notes", "tool": "add_note"}]}),
            "same id",
        ),
    ];
    for (plan, expected) in cases {
        let error = parse_plan(plan.clone()).expect_err("malformed");
        assert!(error.to_string().contains(expected), "{plan}: {error}");
    }
}

#[test]
fn memory_reference_must_exist() {
    let history = vec![QueryRecord {
        number: 1,
        text: "earlier".into(),
        steps: vec![StepRecord {
            id: "s1".into(),
            app: "metro_hail".into(),
            action: "estimate".into(),
            ok: true,
            output: "51.8".into(),
        }],
    }];
    let text = json!({"steps": [{"id": "s1", "app": "notes", "instruction": "save {{q1.s1}}"}]})
        .to_string();
    let plan = parse(&text, &catalog(), &history).expect("known memory reference");
    assert_eq!(plan.steps[0].inputs, vec!["q1.s1".to_string()]);
    let text = json!({"steps": [{"id": "s1", "app": "notes", "instruction": "save {{q2.s1}}"}]})
        .to_string();
    assert!(matches!(
        parse(&text, &catalog(), &history),
        Err(PlanError::UnknownInput { .. })
    ));
    assert_eq!(memory_reference("q12.s3"), Some((12, "s3")));
    assert_eq!(memory_reference("s3"), None);
}

#[test]
fn placeholders_are_found_once_in_order() {
    assert_eq!(
        placeholders_in("{{s2}} and {{ s1 }} and {{s2}} and {{"),
        vec!["s2".to_string(), "s1".to_string()]
    );
}
