//! The query benchmark: bulkhead's planner, parallel steps and app contexts against a vanilla agent
//! loop, one LLM context with every tool that calls the same example apps directly over MCP.
//!
//! Both sides talk to the same scripted OpenAI-compatible server, with a fixed latency per LLM
//! call, through the same openai client. The figures therefore show how the number of sequential
//! LLM calls and the hub's work add up, not how a real model behaves.

mod scripted;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bulkhead_llm::openai::{OpenAiBackend, OpenAiSettings};
use bulkhead_llm::{ChatBackend, ChatRequest, Message, ToolSpec};
use serde_json::json;
use tokio::process::Command;

use crate::client::HubClient;
use crate::hub::HubUnderTest;
use crate::mcp::McpChild;
use crate::stats::{ratio, Samples};
use scripted::ScriptedLlm;

/// The example apps both sides use, with their manifests.
const APPS: [(&str, &str); 3] = [
    (
        "notes",
        include_str!("../../../../../config/apps.d/notes.toml"),
    ),
    (
        "calendar",
        include_str!("../../../../../config/apps.d/calendar.toml"),
    ),
    (
        "mail",
        include_str!("../../../../../config/apps.d/mail.toml"),
    ),
];

/// The vanilla loop stops after this many LLM calls, which no scenario needs.
const MAX_VANILLA_CALLS: u32 = 16;

/// One query, as bulkhead gets it and as the vanilla loop gets it.
struct Scenario {
    set: &'static str,
    variant: &'static str,
    bulkhead: String,
    vanilla: String,
}

/// The medians of one scenario.
pub struct QueryRow {
    set: &'static str,
    variant: &'static str,
    bulkhead_calls: u32,
    vanilla_calls: u32,
    bulkhead: Duration,
    vanilla: Duration,
}

fn call(name: &str, arguments: serde_json::Value) -> serde_json::Value {
    json!({"name": name, "arguments": arguments})
}

fn steps(batches: serde_json::Value) -> String {
    format!("STEPS {batches}")
}

fn scenarios() -> Vec<Scenario> {
    let search_notes = || json!({"query": "bench"});
    let search_mail = || json!({"query": "invoice"});
    let tool_step = |id: &str, app: &str, tool: &str, arguments: serde_json::Value| json!({"id": id, "app": app, "tool": tool, "arguments": arguments});
    let instruction_step = |id: &str, app: &str, tool: &str, arguments: serde_json::Value| json!({"id": id, "app": app, "instruction": steps(json!([[call(tool, arguments)]]))});
    let plan = |steps: Vec<serde_json::Value>| format!("PLAN {}", json!({"steps": steps}));
    let single_vanilla = steps(json!([[call("notes__search_notes", search_notes())]]));
    let multi_vanilla = steps(json!([[
        call("notes__search_notes", search_notes()),
        call("calendar__list_events", json!({})),
        call("mail__search_mail", search_mail()),
    ]]));
    let request = call(
        "request_app",
        json!({"app": "calendar", "tool": "list_events", "arguments": {}}),
    );
    vec![
        Scenario {
            set: "single-app",
            variant: "tool step",
            bulkhead: plan(vec![tool_step(
                "s1",
                "notes",
                "search_notes",
                search_notes(),
            )]),
            vanilla: single_vanilla.clone(),
        },
        Scenario {
            set: "single-app",
            variant: "instruction step",
            bulkhead: plan(vec![instruction_step(
                "s1",
                "notes",
                "search_notes",
                search_notes(),
            )]),
            vanilla: single_vanilla,
        },
        Scenario {
            set: "multi-app (3 apps)",
            variant: "tool steps",
            bulkhead: plan(vec![
                tool_step("s1", "notes", "search_notes", search_notes()),
                tool_step("s2", "calendar", "list_events", json!({})),
                tool_step("s3", "mail", "search_mail", search_mail()),
            ]),
            vanilla: multi_vanilla.clone(),
        },
        Scenario {
            set: "multi-app (3 apps)",
            variant: "instruction steps",
            bulkhead: plan(vec![
                instruction_step("s1", "notes", "search_notes", search_notes()),
                instruction_step("s2", "calendar", "list_events", json!({})),
                instruction_step("s3", "mail", "search_mail", search_mail()),
            ]),
            vanilla: multi_vanilla,
        },
        Scenario {
            set: "collaboration",
            variant: "request_app",
            bulkhead: plan(vec![
                json!({"id": "s1", "app": "notes", "instruction": steps(json!([[request]]))}),
            ]),
            vanilla: steps(json!([
                [call("calendar__list_events", json!({}))],
                [call("notes__search_notes", search_notes())]
            ])),
        },
    ]
}

/// Runs every scenario `repeat` times on each side after one warm-up, and returns the medians.
pub async fn measure(
    bulkheadd: &Path,
    bin_dir: &Path,
    latency: Duration,
    repeat: usize,
) -> Result<Vec<QueryRow>> {
    let llm = ScriptedLlm::start(latency).await?;
    let extra = format!(
        "\n[llm]\nbackend = \"openai\"\nbase_url = \"{}\"\nmodel = \"bench\"\nretries = 0\n\n\
         [[flow.allow]]\nsource = \"notes\"\ntarget = \"calendar\"\n\n[[flow.allow]]\nsource = \"calendar\"\ntarget = \"notes\"\n",
        llm.base_url()
    );
    let hub = HubUnderTest::start_with(bulkheadd, &extra).await?;
    let mut client = HubClient::connect(hub.socket()).await?;
    for (app, manifest) in APPS {
        client.register_app(manifest.to_string()).await?;
        client
            .list_tools(app)
            .await
            .with_context(|| format!("failed to start {app}'s spoke"))?;
    }
    let mut vanilla = Vanilla::start(bin_dir, hub.dir(), llm.base_url()).await?;

    let mut rows = Vec::new();
    for scenario in scenarios() {
        let (_, bulkhead_calls) = client
            .query(&scenario.bulkhead)
            .await
            .with_context(|| format!("{} {}", scenario.set, scenario.variant))?;
        let (_, vanilla_calls) = vanilla.run(&scenario.vanilla).await?;
        let mut bulkhead_times = Vec::with_capacity(repeat);
        let mut vanilla_times = Vec::with_capacity(repeat);
        for _ in 0..repeat {
            let started = Instant::now();
            client.query(&scenario.bulkhead).await?;
            bulkhead_times.push(started.elapsed());
            let started = Instant::now();
            vanilla.run(&scenario.vanilla).await?;
            vanilla_times.push(started.elapsed());
        }
        let median = |times: Vec<Duration>| {
            Samples::new(times)
                .map(|samples| samples.median())
                .ok_or_else(|| anyhow!("no samples"))
        };
        let row = QueryRow {
            set: scenario.set,
            variant: scenario.variant,
            bulkhead_calls,
            vanilla_calls,
            bulkhead: median(bulkhead_times)?,
            vanilla: median(vanilla_times)?,
        };
        eprintln!(
            "bench: query {} / {}: bulkhead {:.0} ms ({} LLM calls), vanilla {:.0} ms ({} LLM calls)",
            row.set,
            row.variant,
            row.bulkhead.as_secs_f64() * 1000.0,
            row.bulkhead_calls,
            row.vanilla.as_secs_f64() * 1000.0,
            row.vanilla_calls
        );
        rows.push(row);
    }
    vanilla.stop().await;
    eprintln!("bench: the scripted LLM served {} requests", llm.requests());
    Ok(rows)
}

/// The baseline: one context with every tool of every app, and the apps run unsandboxed.
struct Vanilla {
    backend: OpenAiBackend,
    apps: HashMap<String, McpChild>,
    tools: Vec<ToolSpec>,
}

impl Vanilla {
    async fn start(bin_dir: &Path, scratch: &Path, base_url: &str) -> Result<Vanilla> {
        let mut apps = HashMap::new();
        let mut tools = Vec::new();
        for (app, _) in APPS {
            let state = scratch.join(format!("vanilla-{app}"));
            std::fs::create_dir_all(&state)
                .with_context(|| format!("failed to create {}", state.display()))?;
            let mut command = Command::new(bin_dir.join(format!("bulkhead-app-{app}")));
            command.env("BULKHEAD_STATE_DIR", &state);
            let mut child = McpChild::spawn(&format!("unsandboxed {app} app"), command)?;
            child.initialize().await?;
            for tool in child.list_tools().await? {
                tools.push(ToolSpec {
                    name: format!("{app}__{tool}"),
                    description: String::new(),
                    parameters: json!({"type": "object"}),
                });
            }
            apps.insert(app.to_string(), child);
        }
        let settings = OpenAiSettings {
            base_url: base_url.to_string(),
            model: "bench".to_string(),
            api_key: None,
            timeout: Duration::from_secs(30),
            retries: 0,
            backoff: Duration::from_millis(250),
        };
        let backend = OpenAiBackend::new(settings).map_err(|error| anyhow!("{error}"))?;
        Ok(Vanilla {
            backend,
            apps,
            tools,
        })
    }

    /// Runs the agent loop on one query and returns the final text and the LLM calls it made.
    async fn run(&mut self, text: &str) -> Result<(String, u32)> {
        let mut messages = vec![
            Message::system("You are an assistant with the tools of every app."),
            Message::user(text),
        ];
        for made in 1..=MAX_VANILLA_CALLS {
            let request = ChatRequest {
                messages: messages.clone(),
                tools: self.tools.clone(),
                max_tokens: None,
            };
            let reply = self
                .backend
                .chat(&request)
                .await
                .map_err(|error| anyhow!("vanilla LLM call failed: {error}"))?;
            if reply.tool_calls.is_empty() {
                return Ok((reply.content, made));
            }
            messages.push(Message::assistant(&reply));
            for call in &reply.tool_calls {
                let (app, tool) = call
                    .name
                    .split_once("__")
                    .ok_or_else(|| anyhow!("unknown function {}", call.name))?;
                let child = self
                    .apps
                    .get_mut(app)
                    .ok_or_else(|| anyhow!("unknown app {app}"))?;
                let result = child.call_tool_text(tool, call.arguments.clone()).await?;
                messages.push(Message::tool_result(&call.id, result));
            }
        }
        bail!("the vanilla loop made {MAX_VANILLA_CALLS} LLM calls without an answer")
    }

    async fn stop(self) {
        for (_, child) in self.apps {
            child.stop().await;
        }
    }
}

/// Renders the rows as a Markdown section.
pub fn to_markdown(rows: &[QueryRow], latency: Duration, repeat: usize) -> String {
    let mut page = String::from("## Queries: bulkhead against a vanilla agent loop\n\n");
    let _ = writeln!(
        page,
        "Each LLM call waits {} ms in a scripted OpenAI-compatible server on 127.0.0.1. Medians of {repeat} runs \
         after one warm-up. The ratio is bulkhead / vanilla.\n",
        latency.as_millis()
    );
    page.push_str("| Set | bulkhead plan | bulkhead LLM calls | vanilla LLM calls | bulkhead | vanilla | ratio |\n");
    page.push_str("|-----|---------------|-------------------:|------------------:|---------:|--------:|------:|\n");
    for row in rows {
        let _ = writeln!(
            page,
            "| {} | {} | {} | {} | {:.0} ms | {:.0} ms | {:.2} |",
            row.set,
            row.variant,
            row.bulkhead_calls,
            row.vanilla_calls,
            row.bulkhead.as_secs_f64() * 1000.0,
            row.vanilla.as_secs_f64() * 1000.0,
            ratio(row.bulkhead, row.vanilla)
        );
    }
    page
}
