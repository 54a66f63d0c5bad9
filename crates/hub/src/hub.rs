//! The hub's shared state: config, registry and supervisor, and the operations the gRPC services
//! and signal handlers perform on them.

use std::sync::Arc;
use std::time::Instant;

use bulkhead_llm::ChatBackend;
use serde_json::Value;
use tokio::sync::RwLock;

use crate::audit::{fields, AuditLog};
use crate::catalog::Catalogs;
use crate::config::Config;
use crate::error::HubError;
use crate::flow::grants::GrantStore;
use crate::flow::{Broker, Caller, Sessions};
use crate::registry::{AppEntry, Problem, Registry};
use crate::sampling::Sampler;
use crate::supervisor::{CallOutcome, Supervisor};
pub use flows::{Carried, FlowOptions};

mod flows;

pub struct Hub {
    pub config: Arc<Config>,
    registry: RwLock<Registry>,
    pub supervisor: Arc<Supervisor>,
    pub audit: Arc<AuditLog>,
    pub catalogs: Arc<Catalogs>,
    sessions: Sessions,
    pub broker: Broker,
    /// The chat backend of `[llm]`, shared by queries and the apps' sampling requests.
    pub llm: Arc<dyn ChatBackend>,
    started: Instant,
}

impl Hub {
    pub fn new(
        config: Arc<Config>,
        registry: Registry,
        audit: Arc<AuditLog>,
        grants: GrantStore,
        catalogs: Arc<Catalogs>,
        llm: Arc<dyn ChatBackend>,
    ) -> Arc<Hub> {
        let sampler = Arc::new(Sampler::new(&config.llm, llm.clone(), audit.clone()));
        let supervisor = Supervisor::new(config.clone(), audit.clone(), catalogs.clone(), sampler);
        let sessions = Sessions::default();
        let broker = Broker::new(&config.flow, grants, audit.clone());
        let registry = RwLock::new(registry);
        Arc::new(Hub { config, registry, supervisor, audit, catalogs, sessions, broker, llm, started: Instant::now() })
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Returns the number of permission requests that wait for an approver's decision.
    pub fn pending_approvals(&self) -> usize {
        self.broker.approvals().pending()
    }

    pub async fn app(&self, name: &str) -> Result<AppEntry, HubError> {
        self.registry.read().await.get(name)
    }

    pub async fn apps(&self) -> (Vec<AppEntry>, Vec<Problem>) {
        let registry = self.registry.read().await;
        (registry.apps().cloned().collect(), registry.problems().to_vec())
    }

    /// Calls `tool` of `app` after checking that the manifest exposes it, that the app's pinned
    /// catalog lists it and its arguments match its input schema, and that the flow guard or the
    /// broker lets the session's data reach it. The call and any flow decision are written
    /// to the audit log before the call reaches the app, a decision durably, and the call is
    /// rejected when they cannot be written.
    pub async fn call_tool(
        &self,
        caller: &Caller,
        app: &str,
        tool: &str,
        arguments_json: String,
    ) -> Result<CallOutcome, HubError> {
        self.call_tool_with(caller, app, tool, arguments_json, FlowOptions::default()).await
    }

    /// Calls a tool like [`Hub::call_tool`], for a query: the arguments carry `options.carried`,
    /// denied fields may be withheld, and decisions are reported to `options.notices`.
    pub(crate) async fn call_tool_with(
        &self,
        caller: &Caller,
        app: &str,
        tool: &str,
        arguments_json: String,
        options: FlowOptions<'_>,
    ) -> Result<CallOutcome, HubError> {
        let entry = self.app(app).await?;
        let checked = if entry.manifest.is_exposed(tool) {
            self.check_catalog(&entry, tool, &arguments_json).await
        } else {
            Err(HubError::ToolNotFound { app: app.to_string(), tool: tool.to_string() })
        };
        if let Err(error) = checked {
            // Nothing reached the app, so the record need not be durable before the response.
            let record = fields([
                ("principal", Value::from(caller.principal.as_str())),
                ("session", Value::from(caller.session.as_str())),
                ("app", Value::from(app)),
                ("tool", Value::from(tool)),
                ("reason", Value::from(error.to_string())),
            ]);
            self.audit.note("call_rejected", record).await;
            return Err(error);
        }
        let call = self.audit.write(
            "call",
            fields([
                ("principal", Value::from(caller.principal.as_str())),
                ("session", Value::from(caller.session.as_str())),
                ("app", Value::from(app)),
                ("tool", Value::from(tool)),
                ("arguments", self.audit.arguments(&arguments_json)),
            ]),
        )?;
        let arguments_json = match self.check_flows(caller, call, &entry, tool, &arguments_json, options).await? {
            Some(withheld) => {
                self.check_catalog(&entry, tool, &withheld).await?;
                withheld
            }
            None => arguments_json,
        };
        let outcome = self.supervisor.call(&entry, tool, arguments_json).await;
        if let Ok(done) = &outcome {
            let text = crate::service::result_text(&done.result_json);
            let confidential = entry.manifest.data.confidential;
            self.sessions.add_result(&caller.principal, &caller.session, app, confidential, &text).await;
        }
        let (result, reason) = match &outcome {
            Ok(done) if done.is_error => ("tool_error", String::new()),
            Ok(_) => ("ok", String::new()),
            Err(error) => ("failed", error.to_string()),
        };
        self.audit
            .note(
                "call_result",
                fields([
                    ("call", Value::from(call)),
                    ("app", Value::from(app)),
                    ("tool", Value::from(tool)),
                    ("result", Value::from(result)),
                    ("reason", Value::from(reason)),
                ]),
            )
            .await;
        outcome
    }

    /// Rereads the apps folder and stops the spokes of apps whose manifest changed or vanished, so the
    /// next call starts them with the new manifest.
    pub async fn reload(&self) -> Result<(usize, Vec<Problem>), HubError> {
        let (outcome, apps, problems) = {
            let mut registry = self.registry.write().await;
            let outcome = registry.reload()?;
            (outcome, registry.apps().count(), registry.problems().to_vec())
        };
        for app in outcome.changed.iter().chain(outcome.removed.iter()) {
            self.supervisor.stop(app).await;
        }
        for app in &outcome.removed {
            self.forget_catalog(app).await;
        }
        let changed: Vec<Value> = outcome.changed.iter().map(|app| Value::from(app.as_str())).collect();
        let removed: Vec<Value> = outcome.removed.iter().map(|app| Value::from(app.as_str())).collect();
        self.audit.note("reload", fields([("changed", Value::from(changed)), ("removed", Value::from(removed))])).await;
        tracing::info!(
            apps,
            problems = problems.len(),
            changed = outcome.changed.len(),
            removed = outcome.removed.len(),
            "manifests reloaded"
        );
        Ok((apps, problems))
    }

    pub async fn register(&self, text: &str, origin: &str, replace: bool) -> Result<AppEntry, HubError> {
        let (entry, replaced) = self.registry.write().await.register(text, origin, replace)?;
        if replaced {
            self.supervisor.stop(&entry.manifest.name).await;
        }
        tracing::info!(app = %entry.manifest.name, origin, "app registered");
        let record = fields([
            ("app", Value::from(entry.manifest.name.as_str())),
            ("origin", Value::from(origin)),
            ("replaced", Value::from(replaced)),
        ]);
        self.audit.note("register", record).await;
        Ok(entry)
    }

    /// Drops a removed app's pinned catalog. A pin file that cannot be deleted is logged: it only
    /// means that an app registered again under the name starts quarantined if its catalog differs.
    async fn forget_catalog(&self, app: &str) {
        if let Err(error) = self.catalogs.remove(app).await {
            tracing::error!(app, "cannot drop the removed app's pinned catalog: {error}");
        }
    }

    pub async fn remove(&self, name: &str) -> Result<(), HubError> {
        self.registry.write().await.remove(name)?;
        self.supervisor.stop(name).await;
        self.forget_catalog(name).await;
        tracing::info!(app = %name, "app removed");
        self.audit.note("remove", fields([("app", Value::from(name))])).await;
        Ok(())
    }
}
