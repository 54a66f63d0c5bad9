//! The spoke supervisor: starts a spoke on its app's first call, keeps it warm until the idle
//! timeout, restarts it with backoff after a crash, and stops every spoke on shutdown.

mod catalog_watch;
mod channel;
mod exit;
mod launch;
mod slot;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bulkhead_proto::v1::SpokeCallToolRequest;
use tokio::sync::Mutex;

use crate::audit::AuditLog;
use crate::catalog::Catalogs;
use crate::config::Config;
use crate::error::HubError;
use crate::registry::AppEntry;
use crate::sampling::Sampler;

pub use channel::SpokeClient;
pub use exit::SpokeExit;
pub use slot::{SpokeInfo, SpokeState};
use slot::{Backoff, Slot};

/// A tool call's result as the app returned it.
pub struct CallOutcome {
    pub result_json: String,
    pub is_error: bool,
}

pub struct Supervisor {
    config: Arc<Config>,
    audit: Arc<AuditLog>,
    catalogs: Arc<Catalogs>,
    sampler: Arc<Sampler>,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    shutting_down: tokio::sync::watch::Sender<bool>,
}

impl Supervisor {
    pub fn new(config: Arc<Config>, audit: Arc<AuditLog>, catalogs: Arc<Catalogs>, sampler: Arc<Sampler>) -> Arc<Supervisor> {
        let (shutting_down, _) = tokio::sync::watch::channel(false);
        let slots = Mutex::new(HashMap::new());
        let supervisor = Arc::new(Supervisor { config, audit, catalogs, sampler, slots, shutting_down });
        tokio::spawn(idle_sweeper(Arc::downgrade(&supervisor)));
        supervisor
    }

    async fn slot(&self, app: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().await;
        let backoff = Backoff { base: self.config.spokes.restart_backoff, max: self.config.spokes.restart_backoff_max };
        slots
            .entry(app.to_string())
            .or_insert_with(|| {
                Arc::new(Slot::new(app, backoff, self.audit.clone(), self.catalogs.clone(), self.sampler.clone()))
            })
            .clone()
    }

    fn check_running(&self) -> Result<(), HubError> {
        if *self.shutting_down.borrow() {
            return Err(HubError::ShuttingDown);
        }
        Ok(())
    }

    /// Starts the app's spoke unless it runs. A start checks the app's catalog against its pin.
    pub async fn ensure_started(&self, entry: &AppEntry) -> Result<(), HubError> {
        self.check_running()?;
        let slot = self.slot(&entry.manifest.name).await;
        slot.ensure_started(&self.config, entry).await?;
        Ok(())
    }

    /// Calls one tool through the app's spoke, within the manifest's call timeout.
    pub async fn call(&self, entry: &AppEntry, tool: &str, arguments_json: String) -> Result<CallOutcome, HubError> {
        self.check_running()?;
        let name = entry.manifest.name.clone();
        let slot = self.slot(&name).await;
        // The hub checked the tool and its arguments against the pinned catalog before this call.
        let spoke = slot.ensure_started(&self.config, entry).await?;
        let timeout = entry.manifest.limits.call_timeout;
        let request = SpokeCallToolRequest { tool: tool.to_string(), arguments_json };
        let mut shutting_down = self.shutting_down.subscribe();

        let guard = spoke.begin_call();
        let mut client = spoke.client.clone();
        let result = tokio::select! {
            result = tokio::time::timeout(timeout, client.call_tool(request)) => result,
            _ = shutting_down.wait_for(|down| *down) => return Err(HubError::ShuttingDown),
        };
        drop(guard);
        match result {
            Ok(Ok(response)) => {
                slot.record_success().await;
                let response = response.into_inner();
                Ok(CallOutcome { result_json: response.result_json, is_error: response.is_error })
            }
            Ok(Err(status)) if status.code() == tonic::Code::InvalidArgument => Err(HubError::InvalidArguments {
                app: name,
                tool: tool.to_string(),
                reason: status.message().to_string(),
            }),
            Ok(Err(status)) => {
                // A broken channel or an exited app: wait briefly for the spoke's exit to be observed,
                // so the caller learns why.
                match spoke.wait_exit(Duration::from_millis(500)).await {
                    Some(exit) => Err(HubError::SpokeUnavailable {
                        app: name,
                        reason: format!("the app {exit} during the call to {tool}; the next call restarts it"),
                    }),
                    None if status.code() == tonic::Code::Unknown => Err(HubError::CallFailed {
                        app: name,
                        tool: tool.to_string(),
                        reason: status.message().to_string(),
                    }),
                    None => Err(HubError::SpokeUnavailable { app: name, reason: status.message().to_string() }),
                }
            }
            Err(_) => {
                tracing::warn!(app = %name, tool, ?timeout, "tool call timed out; stopping the spoke");
                slot.kill(&spoke).await;
                Err(HubError::CallTimeout {
                    app: name,
                    tool: tool.to_string(),
                    timeout: humantime::format_duration(timeout).to_string(),
                })
            }
        }
    }

    /// Returns a snapshot of every slot, for ListSpokes.
    pub async fn spokes(&self) -> Vec<SpokeInfo> {
        let slots: Vec<Arc<Slot>> = self.slots.lock().await.values().cloned().collect();
        let mut infos = Vec::new();
        for slot in slots {
            if let Some(info) = slot.info().await {
                infos.push(info);
            }
        }
        infos.sort_by(|a, b| a.app.cmp(&b.app));
        infos
    }

    /// Returns the state of one app's spoke, or `Stopped` when it has none.
    pub async fn state_of(&self, app: &str) -> SpokeState {
        let slot = self.slots.lock().await.get(app).cloned();
        match slot {
            Some(slot) => slot.state().await,
            None => SpokeState::Stopped,
        }
    }

    /// Stops one app's spoke, for example after its manifest changed.
    pub async fn stop(&self, app: &str) {
        let slot = self.slots.lock().await.remove(app);
        if let Some(slot) = slot {
            slot.stop(self.config.spokes.stop_grace).await;
        }
    }

    /// Fails new and in-flight calls, then stops every spoke in parallel.
    pub async fn shutdown(&self) {
        self.shutting_down.send_replace(true);
        let slots: Vec<Arc<Slot>> = self.slots.lock().await.drain().map(|(_, slot)| slot).collect();
        let grace = self.config.spokes.stop_grace;
        let mut stops = tokio::task::JoinSet::new();
        for slot in slots {
            stops.spawn(async move { slot.stop(grace).await });
        }
        while stops.join_next().await.is_some() {}
    }

    /// Stops spokes that have been idle for longer than the idle timeout.
    async fn stop_idle(&self) {
        let idle_timeout = self.config.spokes.idle_timeout;
        if idle_timeout.is_zero() {
            return;
        }
        let slots: Vec<Arc<Slot>> = self.slots.lock().await.values().cloned().collect();
        for slot in slots {
            if slot.is_idle_for(idle_timeout).await {
                tracing::info!(app = %slot.app(), "stopping an idle spoke");
                slot.stop(self.config.spokes.stop_grace).await;
            }
        }
    }
}

async fn idle_sweeper(supervisor: std::sync::Weak<Supervisor>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let Some(supervisor) = supervisor.upgrade() else { return };
        supervisor.stop_idle().await;
    }
}
