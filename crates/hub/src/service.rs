//! The AgentService and OperatorService gRPC implementations.

use std::sync::Arc;

use bulkhead_proto::v1::agent_service_server::AgentService;
use bulkhead_proto::v1::operator_service_server::OperatorService;
use bulkhead_proto::v1::{
    App, CallToolRequest, CallToolResponse, GetStatusRequest, GetStatusResponse, ListAppsRequest,
    ListAppsResponse, ListSpokesRequest, ListSpokesResponse, ListToolsRequest, ListToolsResponse,
    ManifestProblem, RegisterAppRequest, RegisterAppResponse, ReloadRequest, ReloadResponse, RemoveAppRequest,
    RemoveAppResponse, Spoke, Tool,
};
use tonic::{Request, Response, Status};

use crate::error::HubError;
use crate::flow::Caller;
use crate::hub::Hub;
use crate::registry::{AppEntry, Problem};

/// Serves both public services from one shared [`Hub`].
#[derive(Clone)]
pub struct HubService {
    hub: Arc<Hub>,
}

impl HubService {
    pub fn new(hub: Arc<Hub>) -> HubService {
        HubService { hub }
    }

    async fn app_message(&self, entry: &AppEntry) -> App {
        let manifest = &entry.manifest;
        App {
            name: manifest.name.clone(),
            description: manifest.description.clone(),
            origin: entry.origin.as_str().to_string(),
            manifest_path: entry.path.display().to_string(),
            exposed_tools: manifest.tools.expose.clone().unwrap_or_default(),
            destructive_tools: manifest.tools.destructive.clone(),
            spoke_state: self.hub.supervisor.state_of(&manifest.name).await.as_str().to_string(),
        }
    }
}

fn problem_messages(problems: Vec<Problem>) -> Vec<ManifestProblem> {
    problems
        .into_iter()
        .map(|problem| ManifestProblem { path: problem.path.display().to_string(), message: problem.message })
        .collect()
}

/// Names the peer of a request: "uid:N" from SO_PEERCRED on the Unix socket, or "token" on TCP,
/// where the bearer token check already ran.
pub(crate) fn principal<T>(request: &Request<T>) -> Result<String, HubError> {
    if let Some(info) = request.extensions().get::<tonic::transport::server::UdsConnectInfo>() {
        return match info.peer_cred {
            Some(credentials) => Ok(format!("uid:{}", credentials.uid())),
            None => Err(HubError::UnknownPeer("the Unix socket connection has no peer credentials")),
        };
    }
    if request.extensions().get::<tonic::transport::server::TcpConnectInfo>().is_some() {
        return Ok("token".to_string());
    }
    Err(HubError::UnknownPeer("the connection is neither a Unix socket nor TCP"))
}

/// Joins the text items of an MCP CallToolResult's content.
pub(crate) fn result_text(result_json: &str) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(result_json) else { return String::new() };
    let Some(content) = value.get("content").and_then(|content| content.as_array()) else { return String::new() };
    content
        .iter()
        .filter(|item| item.get("type").and_then(|t| t.as_str()) == Some("text"))
        .filter_map(|item| item.get("text").and_then(|t| t.as_str()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tonic::async_trait]
impl AgentService for HubService {
    async fn list_apps(&self, _request: Request<ListAppsRequest>) -> Result<Response<ListAppsResponse>, Status> {
        let (entries, problems) = self.hub.apps().await;
        let mut apps = Vec::with_capacity(entries.len());
        for entry in &entries {
            apps.push(self.app_message(entry).await);
        }
        Ok(Response::new(ListAppsResponse { apps, problems: problem_messages(problems) }))
    }

    async fn list_tools(&self, request: Request<ListToolsRequest>) -> Result<Response<ListToolsResponse>, Status> {
        let request = request.into_inner();
        let entries = if request.app.is_empty() {
            self.hub.apps().await.0
        } else {
            vec![self.hub.app(&request.app).await?]
        };
        let mut tools = Vec::new();
        for entry in entries {
            let manifest = &entry.manifest;
            tracing::debug!(app = %manifest.name, "listing tools");
            for tool in self.hub.supervisor.tools(&entry).await? {
                if !manifest.is_exposed(&tool.name) {
                    continue;
                }
                tools.push(Tool {
                    app: manifest.name.clone(),
                    destructive: manifest.is_destructive(&tool.name),
                    name: tool.name,
                    description: tool.description,
                    input_schema_json: tool.input_schema_json,
                });
            }
        }
        Ok(Response::new(ListToolsResponse { tools }))
    }

    async fn call_tool(&self, request: Request<CallToolRequest>) -> Result<Response<CallToolResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let caller = Caller { principal, session: request.session_id.clone() };
        tracing::debug!(app = %request.app, tool = %request.tool, "call");
        let arguments_json = if request.arguments_json.trim().is_empty() { "{}".to_string() } else { request.arguments_json };
        let outcome = self.hub.call_tool(&caller, &request.app, &request.tool, arguments_json).await?;
        let text = result_text(&outcome.result_json);
        Ok(Response::new(CallToolResponse { result_json: outcome.result_json, is_error: outcome.is_error, text }))
    }
}

#[tonic::async_trait]
impl OperatorService for HubService {
    async fn register_app(
        &self,
        request: Request<RegisterAppRequest>,
    ) -> Result<Response<RegisterAppResponse>, Status> {
        let request = request.into_inner();
        let origin = if request.origin.is_empty() { "manifest".to_string() } else { request.origin };
        let entry = self.hub.register(&request.manifest_toml, &origin, request.replace).await?;
        Ok(Response::new(RegisterAppResponse { app: Some(self.app_message(&entry).await) }))
    }

    async fn remove_app(&self, request: Request<RemoveAppRequest>) -> Result<Response<RemoveAppResponse>, Status> {
        self.hub.remove(&request.into_inner().name).await?;
        Ok(Response::new(RemoveAppResponse {}))
    }

    async fn list_spokes(&self, _request: Request<ListSpokesRequest>) -> Result<Response<ListSpokesResponse>, Status> {
        let spokes = self
            .hub
            .supervisor
            .spokes()
            .await
            .into_iter()
            .map(|info| Spoke {
                app: info.app,
                pid: info.pid,
                app_pid: info.app_pid,
                state: info.state.as_str().to_string(),
                started_at_ms: info.started_at_ms,
                restarts: info.restarts,
                last_exit: info.last_exit,
                memory_bytes: info.memory_bytes,
                calls: info.calls,
            })
            .collect();
        Ok(Response::new(ListSpokesResponse { spokes }))
    }

    async fn get_status(&self, _request: Request<GetStatusRequest>) -> Result<Response<GetStatusResponse>, Status> {
        let (apps, problems) = self.hub.apps().await;
        let spokes = self.hub.supervisor.spokes().await;
        let running = spokes.iter().filter(|spoke| spoke.pid != 0).count();
        Ok(Response::new(GetStatusResponse {
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_seconds: self.hub.uptime().as_secs(),
            apps: u32::try_from(apps.len()).unwrap_or(u32::MAX),
            spokes: u32::try_from(running).unwrap_or(u32::MAX),
            manifest_problems: u32::try_from(problems.len()).unwrap_or(u32::MAX),
            socket: self.hub.config.server.socket.display().to_string(),
            pending_approvals: u32::try_from(self.hub.pending_approvals()).unwrap_or(u32::MAX),
        }))
    }

    async fn reload(&self, _request: Request<ReloadRequest>) -> Result<Response<ReloadResponse>, Status> {
        let (apps, problems) = self.hub.reload().await?;
        Ok(Response::new(ReloadResponse {
            apps: u32::try_from(apps).unwrap_or(u32::MAX),
            problems: problem_messages(problems),
        }))
    }
}
