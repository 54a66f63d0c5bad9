//! The CatalogService gRPC implementation, and the hub operations that put pins between agents
//! and apps.

use std::sync::Arc;

use bulkhead_proto::v1::catalog_service_server::CatalogService;
use bulkhead_proto::v1::{
    ApproveCatalogRequest, ApproveCatalogResponse, CatalogTool, DiffCatalogRequest, DiffCatalogResponse,
    ToolChange, ToolDescriptor,
};
use tonic::{Request, Response, Status};

use super::PinnedTool;
use crate::error::HubError;
use crate::hub::Hub;
use crate::registry::AppEntry;

impl Hub {
    /// Starts the app's spoke if needed, which pins its catalog on the first start, and checks a
    /// call against the pin.
    pub async fn check_catalog(&self, entry: &AppEntry, tool: &str, arguments_json: &str) -> Result<(), HubError> {
        self.supervisor.ensure_started(entry).await?;
        self.catalogs.check_call(&entry.manifest.name, tool, arguments_json)?;
        Ok(())
    }

    /// Returns the app's pinned tools, starting its spoke first if needed. A quarantined app's
    /// list stays the pinned one.
    pub async fn pinned_tools(&self, entry: &AppEntry) -> Result<Vec<ToolDescriptor>, HubError> {
        self.supervisor.ensure_started(entry).await?;
        let app = &entry.manifest.name;
        Ok(self.catalogs.pinned_tools(app).ok_or_else(|| super::CatalogError::NotPinned { app: app.clone() })?)
    }
}

/// Serves `bulkhead apps diff` and `bulkhead apps approve`.
#[derive(Clone)]
pub struct CatalogRpc {
    hub: Arc<Hub>,
}

impl CatalogRpc {
    pub fn new(hub: Arc<Hub>) -> CatalogRpc {
        CatalogRpc { hub }
    }
}

fn catalog_tool(tool: &PinnedTool) -> CatalogTool {
    CatalogTool {
        name: tool.name.clone(),
        description: tool.description.clone(),
        input_schema_json: tool.schema_text(),
        sha256: tool.sha256.clone(),
    }
}

#[tonic::async_trait]
impl CatalogService for CatalogRpc {
    async fn diff_catalog(&self, request: Request<DiffCatalogRequest>) -> Result<Response<DiffCatalogResponse>, Status> {
        let app = request.into_inner().app;
        self.hub.app(&app).await?;
        let report = self.hub.catalogs.diff(&app).map_err(HubError::from)?;
        let quarantine = report.quarantine.as_ref();
        let changed = report
            .diff
            .changed
            .iter()
            .map(|change| ToolChange {
                name: change.new.name.clone(),
                old_description: change.old.description.clone(),
                new_description: change.new.description.clone(),
                old_input_schema_json: change.old.schema_text(),
                new_input_schema_json: change.new.schema_text(),
                description_diff: change.description_diff.clone(),
                input_schema_diff: change.input_schema_diff.clone(),
            })
            .collect();
        Ok(Response::new(DiffCatalogResponse {
            app,
            quarantined: quarantine.is_some(),
            pinned_sha256: report.pinned_sha256,
            offered_sha256: quarantine.map(|q| q.offered.sha256.clone()).unwrap_or_default(),
            trigger: quarantine.map(|q| q.trigger.as_str().to_string()).unwrap_or_default(),
            quarantined_at_ms: quarantine.map_or(0, |q| q.since_ms),
            added: report.diff.added.iter().map(catalog_tool).collect(),
            removed: report.diff.removed.iter().map(catalog_tool).collect(),
            changed,
        }))
    }

    async fn approve_catalog(
        &self,
        request: Request<ApproveCatalogRequest>,
    ) -> Result<Response<ApproveCatalogResponse>, Status> {
        let request = request.into_inner();
        self.hub.app(&request.app).await?;
        let expected = Some(request.offered_sha256.as_str()).filter(|sha| !sha.is_empty());
        let pinned = self.hub.catalogs.approve(&request.app, expected).await.map_err(HubError::from)?;
        Ok(Response::new(ApproveCatalogResponse {
            pinned_sha256: pinned.sha256,
            tools: u32::try_from(pinned.tools.len()).unwrap_or(u32::MAX),
        }))
    }
}
