//! Pinned tool catalogs: the hub pins the catalog an app's spoke returns on its first start, and
//! quarantines the app when a later start or a tools/list_changed notification brings another.
//!
//! Only `approve` lifts a quarantine, even when the app offers the pinned catalog again. Every
//! pin, quarantine and approval is recorded in the audit log with fsync: a pin or an approval
//! before it takes effect, a quarantine even when the pin file cannot be written, because the
//! quarantine only takes rights away. Tool calls are checked against the pinned catalog, with
//! input schemas compiled once per pin.

mod diff;
mod pin;
mod schema;
pub mod service;
mod store;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bulkhead_proto::v1::ToolDescriptor;
use serde_json::Value;

use crate::audit::{fields, AuditError, AuditLog};
pub use diff::CatalogDiff;
pub use pin::{Catalog, PinnedTool};
use schema::{Rejection, Validators};
pub use store::{PinRecord, PinStore, Quarantine, Trigger};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(
        "app {app:?} is quarantined because its tool catalog differs from the pinned one; review the change \
         with `bulkhead apps diff {app}` and accept it with `bulkhead apps approve {app}`"
    )]
    Quarantined { app: String },
    #[error(
        "app {app:?} has no pinned tool catalog yet; the hub pins it when the app's spoke first starts, \
         for example on `bulkhead tools {app}`"
    )]
    NotPinned { app: String },
    #[error("app {app:?} is not quarantined, so there is no catalog to approve; its pinned catalog is {pinned}")]
    NotQuarantined { app: String, pinned: String },
    #[error(
        "the catalog that app {app:?} offers changed after the review: it is now {offered}, not {expected}; \
         review it again with `bulkhead apps diff {app}`"
    )]
    StaleApproval { app: String, expected: String, offered: String },
    #[error("tool {tool:?} not found in app {app:?}; list its tools with `bulkhead tools {app}`")]
    ToolNotFound { app: String, tool: String },
    #[error("invalid arguments for {app}/{tool}: {reason}; `bulkhead tools {app} --json` shows the input schema")]
    InvalidArguments { app: String, tool: String, reason: String },
    #[error(
        "the input schema of {app}/{tool} does not compile ({reason}), so the hub rejects its calls instead of \
         passing arguments it cannot check; the app must publish a valid schema, which then needs \
         `bulkhead apps approve {app}`"
    )]
    UnusableSchema { app: String, tool: String, reason: String },
    #[error("app {app:?} returned a tool catalog the hub cannot pin: {reason}; fix the app")]
    InvalidCatalog { app: String, reason: String },
    #[error("cannot store the pinned catalog in {path}: {source}")]
    Store { path: String, source: std::io::Error },
    #[error(
        "the pinned catalog {path} is invalid: {reason}; restore it from a backup, or delete it so that the \
         app's next start pins its catalog without review"
    )]
    Corrupt { path: String, reason: String },
    #[error("{0}; the hub does not change a pin it cannot record")]
    Audit(#[from] AuditError),
}

/// One app's pin and its compiled schemas.
struct AppCatalog {
    record: PinRecord,
    validators: Validators,
}

impl AppCatalog {
    fn new(record: PinRecord) -> Arc<AppCatalog> {
        let validators = Validators::compile(&record.pinned);
        for (tool, reason) in validators.unusable() {
            tracing::warn!(app = %record.app, tool, "the tool's input schema does not compile, so its calls are rejected: {reason}");
        }
        Arc::new(AppCatalog { record, validators })
    }
}

/// The comparison of an app's pinned catalog with the catalog it offered, for `bulkhead apps diff`.
pub struct DiffReport {
    pub pinned_sha256: String,
    pub quarantine: Option<Quarantine>,
    pub diff: CatalogDiff,
}

/// The pins of every app, in memory and under `<state>/catalogs`.
pub struct Catalogs {
    store: PinStore,
    audit: Arc<AuditLog>,
    apps: RwLock<HashMap<String, Arc<AppCatalog>>>,
    /// Serializes the changes of pins, so that two observations cannot both pin a first catalog.
    changes: tokio::sync::Mutex<()>,
}

impl Catalogs {
    /// Loads every pin under `<state>/catalogs`. Pins of apps that are no longer registered stay,
    /// and apply again if an app of that name comes back.
    pub fn load(state: &Path, audit: Arc<AuditLog>) -> Result<Arc<Catalogs>, CatalogError> {
        let store = PinStore::open(state)?;
        let apps = store
            .load_all()?
            .into_iter()
            .map(|record| (record.app.clone(), AppCatalog::new(record)))
            .collect();
        Ok(Arc::new(Catalogs { store, audit, apps: RwLock::new(apps), changes: tokio::sync::Mutex::new(()) }))
    }

    fn get(&self, app: &str) -> Option<Arc<AppCatalog>> {
        self.apps.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(app).cloned()
    }

    fn install(&self, record: PinRecord) {
        let app = record.app.clone();
        let entry = AppCatalog::new(record);
        self.apps.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(app, entry);
    }

    /// Compares the catalog an app's spoke reported with the app's pin: pins it when the app has
    /// none, and quarantines the app when it differs.
    pub async fn observe(&self, app: &str, tools: &[ToolDescriptor], trigger: Trigger) -> Result<(), CatalogError> {
        let offered = Catalog::from_descriptors(app, tools)?;
        let _change = self.changes.lock().await;
        let Some(current) = self.get(app) else {
            return self.pin_first(app, offered, trigger).await;
        };

        let record = &current.record;
        let already_offered = record.quarantine.as_ref().is_some_and(|q| q.offered.sha256 == offered.sha256);
        if already_offered || (record.quarantine.is_none() && record.pinned.sha256 == offered.sha256) {
            return Ok(());
        }

        let changes = diff::diff(&record.pinned, &offered);
        let names = |tools: &[PinnedTool]| Value::from(tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>());
        let changed: Vec<&str> = changes.changed.iter().map(|change| change.new.name.as_str()).collect();
        tracing::warn!(
            app,
            trigger = trigger.as_str(),
            pinned = %record.pinned.sha256,
            offered = %offered.sha256,
            "the app's tool catalog differs from its pin; the app is quarantined"
        );
        let audited = self
            .audit
            .record(
                "catalog_quarantine",
                fields([
                    ("app", Value::from(app)),
                    ("trigger", Value::from(trigger.as_str())),
                    ("pinned_sha256", Value::from(record.pinned.sha256.as_str())),
                    ("offered_sha256", Value::from(offered.sha256.as_str())),
                    ("added", names(&changes.added)),
                    ("removed", names(&changes.removed)),
                    ("changed", Value::from(changed)),
                ]),
            )
            .await;

        let mut quarantined = record.clone();
        let since_ms = record.quarantine.as_ref().map_or_else(now_ms, |quarantine| quarantine.since_ms);
        quarantined.quarantine = Some(Quarantine { since_ms, trigger, offered });
        // The quarantine takes effect in memory even when it cannot be recorded or stored, because
        // it only stops calls.
        let stored = self.store.save(&quarantined);
        self.install(quarantined);
        audited?;
        stored
    }

    async fn pin_first(&self, app: &str, catalog: Catalog, trigger: Trigger) -> Result<(), CatalogError> {
        let record = PinRecord::new(app, catalog, now_ms());
        self.audit
            .record(
                "catalog_pin",
                fields([
                    ("app", Value::from(app)),
                    ("trigger", Value::from(trigger.as_str())),
                    ("sha256", Value::from(record.pinned.sha256.as_str())),
                    ("tools", Value::from(record.pinned.tools.len())),
                ]),
            )
            .await?;
        self.store.save(&record)?;
        tracing::info!(app, sha256 = %record.pinned.sha256, tools = record.pinned.tools.len(), "tool catalog pinned");
        self.install(record);
        Ok(())
    }

    /// Pins the catalog a quarantined app offered and lifts the quarantine. With `expected`, the
    /// offered catalog must still have that SHA-256. Returns the new pin.
    pub async fn approve(&self, app: &str, expected: Option<&str>) -> Result<Catalog, CatalogError> {
        let _change = self.changes.lock().await;
        let current = self.get(app).ok_or_else(|| CatalogError::NotPinned { app: app.to_string() })?;
        let Some(quarantine) = &current.record.quarantine else {
            return Err(CatalogError::NotQuarantined { app: app.to_string(), pinned: current.record.pinned.sha256.clone() });
        };
        if let Some(expected) = expected.filter(|expected| *expected != quarantine.offered.sha256) {
            return Err(CatalogError::StaleApproval {
                app: app.to_string(),
                expected: expected.to_string(),
                offered: quarantine.offered.sha256.clone(),
            });
        }
        self.audit
            .record(
                "catalog_approve",
                fields([
                    ("app", Value::from(app)),
                    ("old_sha256", Value::from(current.record.pinned.sha256.as_str())),
                    ("sha256", Value::from(quarantine.offered.sha256.as_str())),
                    ("tools", Value::from(quarantine.offered.tools.len())),
                ]),
            )
            .await?;
        let record = PinRecord::new(app, quarantine.offered.clone(), now_ms());
        self.store.save(&record)?;
        tracing::info!(app, sha256 = %record.pinned.sha256, "changed tool catalog approved and pinned");
        let pinned = record.pinned.clone();
        self.install(record);
        Ok(pinned)
    }

    /// Forgets an app's pin, for an app that was removed.
    pub async fn remove(&self, app: &str) -> Result<(), CatalogError> {
        let _change = self.changes.lock().await;
        self.apps.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(app);
        self.store.remove(app)
    }

    /// Checks a call against the app's pin: the app must not be quarantined, the tool must be in
    /// the pinned catalog, and the arguments must match its input schema.
    pub fn check_call(&self, app: &str, tool: &str, arguments_json: &str) -> Result<(), CatalogError> {
        let current = self.get(app).ok_or_else(|| CatalogError::NotPinned { app: app.to_string() })?;
        if current.record.quarantine.is_some() {
            return Err(CatalogError::Quarantined { app: app.to_string() });
        }
        let (app, tool) = (app.to_string(), tool.to_string());
        current.validators.check(&tool, arguments_json).map_err(|rejection| match rejection {
            Rejection::UnknownTool => CatalogError::ToolNotFound { app, tool },
            Rejection::UnusableSchema(reason) => CatalogError::UnusableSchema { app, tool, reason },
            Rejection::Invalid(reason) => CatalogError::InvalidArguments { app, tool, reason },
        })
    }

    /// Returns the app's pinned tools, or `None` when it has no pin.
    pub fn pinned_tools(&self, app: &str) -> Option<Vec<ToolDescriptor>> {
        self.get(app).map(|current| current.record.pinned.descriptors())
    }

    /// Returns the SHA-256 of the app's pinned catalog and whether the app is quarantined.
    pub fn status(&self, app: &str) -> Option<(String, bool)> {
        self.get(app).map(|current| (current.record.pinned.sha256.clone(), current.record.quarantine.is_some()))
    }

    /// Compares the app's pinned catalog with the one it offered, if it is quarantined.
    pub fn diff(&self, app: &str) -> Result<DiffReport, CatalogError> {
        let current = self.get(app).ok_or_else(|| CatalogError::NotPinned { app: app.to_string() })?;
        let record = &current.record;
        let diff = match &record.quarantine {
            Some(quarantine) => diff::diff(&record.pinned, &quarantine.offered),
            None => CatalogDiff::default(),
        };
        Ok(DiffReport { pinned_sha256: record.pinned.sha256.clone(), quarantine: record.quarantine.clone(), diff })
    }
}

fn now_ms() -> u64 {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
