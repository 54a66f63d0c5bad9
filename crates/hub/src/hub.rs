//! The hub's shared state: config, registry and supervisor, and the operations the gRPC services
//! and signal handlers perform on them.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::RwLock;

use crate::config::Config;
use crate::error::HubError;
use crate::registry::{AppEntry, Problem, Registry};
use crate::supervisor::{CallOutcome, Supervisor};

pub struct Hub {
    pub config: Arc<Config>,
    registry: RwLock<Registry>,
    pub supervisor: Arc<Supervisor>,
    started: Instant,
}

impl Hub {
    pub fn new(config: Arc<Config>, registry: Registry) -> Arc<Hub> {
        let supervisor = Supervisor::new(config.clone());
        Arc::new(Hub { config, registry: RwLock::new(registry), supervisor, started: Instant::now() })
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Returns the number of permission requests that wait for an approver's decision.
    /// NOTE: always 0 until the hub has an approval broker.
    pub fn pending_approvals(&self) -> usize {
        0
    }

    pub async fn app(&self, name: &str) -> Result<AppEntry, HubError> {
        self.registry.read().await.get(name)
    }

    pub async fn apps(&self) -> (Vec<AppEntry>, Vec<Problem>) {
        let registry = self.registry.read().await;
        (registry.apps().cloned().collect(), registry.problems().to_vec())
    }

    /// Calls `tool` of `app` after checking that the manifest exposes it.
    pub async fn call_tool(&self, app: &str, tool: &str, arguments_json: String) -> Result<CallOutcome, HubError> {
        let entry = self.app(app).await?;
        if !entry.manifest.is_exposed(tool) {
            return Err(HubError::ToolNotFound { app: app.to_string(), tool: tool.to_string() });
        }
        self.supervisor.call(&entry, tool, arguments_json).await
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
        Ok(entry)
    }

    pub async fn remove(&self, name: &str) -> Result<(), HubError> {
        self.registry.write().await.remove(name)?;
        self.supervisor.stop(name).await;
        tracing::info!(app = %name, "app removed");
        Ok(())
    }
}
