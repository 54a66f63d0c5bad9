//! The gRPC connection to the hub over its Unix socket.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Result};
use bulkhead_proto::v1::agent_service_client::AgentServiceClient;
use bulkhead_proto::v1::approval_service_client::ApprovalServiceClient;
use bulkhead_proto::v1::catalog_service_client::CatalogServiceClient;
use bulkhead_proto::v1::log_service_client::LogServiceClient;
use bulkhead_proto::v1::operator_service_client::OperatorServiceClient;
use bulkhead_proto::v1::{
    CallToolRequest, CallToolResponse, GetStatusRequest, GetStatusResponse, ListAppsRequest,
    ListAppsResponse, ListSpokesRequest, ListSpokesResponse, ListToolsRequest, ListToolsResponse,
    RegisterAppRequest, RegisterAppResponse, ReloadRequest, ReloadResponse, RemoveAppRequest,
};
use bulkhead_proto::v1::{
    ApprovalEvent, DecideRequest, DecideResponse, Decision, Grant, ListGrantsRequest, LogLine, RevokeGrantRequest,
    StreamLogsRequest, WatchApprovalsRequest,
};
use bulkhead_proto::v1::{
    ApproveCatalogRequest, ApproveCatalogResponse, DiffCatalogRequest, DiffCatalogResponse,
};
use bulkhead_proto::v1::query_service_client::QueryServiceClient;
use bulkhead_proto::v1::{QueryEvent, QueryRequest};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Request, Response, Status};

use crate::errors::{describe_connect_error, describe_status, RpcTarget};

/// HTTP/2 needs an authority in the URI, but the connector below ignores it and dials the socket.
const PLACEHOLDER_URI: &str = "http://[::]:50051";

/// A connection to the hub. Every request carries `timeout` as its gRPC deadline, and every
/// failure becomes an `anyhow::Error` whose message is one line that names the fix.
pub struct Hub {
    agent: AgentServiceClient<Channel>,
    operator: OperatorServiceClient<Channel>,
    logs: LogServiceClient<Channel>,
    approvals: ApprovalServiceClient<Channel>,
    catalog: CatalogServiceClient<Channel>,
    queries: QueryServiceClient<Channel>,
    socket: PathBuf,
    timeout: Duration,
}

impl Hub {
    /// Connects to the hub's socket, waiting at most `timeout` for the connection.
    pub async fn connect(socket: &Path, timeout: Duration) -> Result<Hub> {
        let path = socket.to_path_buf();
        let connector = tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { UnixStream::connect(path).await.map(TokioIo::new) }
        });
        let channel = Endpoint::from_static(PLACEHOLDER_URI)
            .connect_timeout(timeout)
            .connect_with_connector(connector)
            .await
            .map_err(|err| anyhow!(describe_connect_error(socket, &err)))?;

        Ok(Hub {
            agent: AgentServiceClient::new(channel.clone()),
            operator: OperatorServiceClient::new(channel.clone()),
            logs: LogServiceClient::new(channel.clone()),
            approvals: ApprovalServiceClient::new(channel.clone()),
            catalog: CatalogServiceClient::new(channel.clone()),
            queries: QueryServiceClient::new(channel),
            socket: socket.to_path_buf(),
            timeout,
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub async fn list_apps(&mut self) -> Result<ListAppsResponse> {
        let request = self.request(ListAppsRequest {});
        let reply = self.agent.list_apps(request).await;
        self.finish(reply, "ListApps")
    }

    pub async fn list_tools(&mut self, app: String) -> Result<ListToolsResponse> {
        let request = self.request(ListToolsRequest { app });
        let reply = self.agent.list_tools(request).await;
        self.finish(reply, "ListTools")
    }

    pub async fn call_tool(&mut self, call: CallToolRequest) -> Result<CallToolResponse> {
        let request = self.request(call);
        let reply = self.agent.call_tool(request).await;
        self.finish(reply, "CallTool")
    }

    pub async fn register_app(&mut self, app: RegisterAppRequest) -> Result<RegisterAppResponse> {
        let request = self.request(app);
        let reply = self.operator.register_app(request).await;
        self.finish(reply, "RegisterApp")
    }

    pub async fn remove_app(&mut self, name: String) -> Result<()> {
        let request = self.request(RemoveAppRequest { name });
        let reply = self.operator.remove_app(request).await;
        self.finish(reply, "RemoveApp").map(drop)
    }

    pub async fn list_spokes(&mut self) -> Result<ListSpokesResponse> {
        let request = self.request(ListSpokesRequest {});
        let reply = self.operator.list_spokes(request).await;
        self.finish(reply, "ListSpokes")
    }

    pub async fn get_status(&mut self) -> Result<GetStatusResponse> {
        let request = self.request(GetStatusRequest {});
        let reply = self.operator.get_status(request).await;
        self.finish(reply, "GetStatus")
    }

    pub async fn reload(&mut self) -> Result<ReloadResponse> {
        let request = self.request(ReloadRequest {});
        let reply = self.operator.reload(request).await;
        self.finish(reply, "Reload")
    }

    pub async fn diff_catalog(&mut self, app: String) -> Result<DiffCatalogResponse> {
        let request = self.request(DiffCatalogRequest { app });
        let reply = self.catalog.diff_catalog(request).await;
        self.finish(reply, "DiffCatalog")
    }

    pub async fn approve_catalog(
        &mut self,
        approval: ApproveCatalogRequest,
    ) -> Result<ApproveCatalogResponse> {
        let request = self.request(approval);
        let reply = self.catalog.approve_catalog(request).await;
        self.finish(reply, "ApproveCatalog")
    }

    /// Opens the stream of `app`'s stderr lines. With `follow` the stream has no deadline, because
    /// it stays open until the user interrupts it.
    pub async fn stream_logs(&mut self, app: String, follow: bool) -> Result<tonic::Streaming<LogLine>> {
        let request = if follow {
            Request::new(StreamLogsRequest { app, follow })
        } else {
            self.request(StreamLogsRequest { app, follow })
        };
        let reply = self.logs.stream_logs(request).await;
        self.finish(reply, "StreamLogs")
    }

    /// Opens the stream of approval requests. It has no deadline, because it stays open until
    /// the user interrupts it.
    pub async fn watch_approvals(&mut self) -> Result<tonic::Streaming<ApprovalEvent>> {
        let reply = self.approvals.watch_approvals(Request::new(WatchApprovalsRequest {})).await;
        self.finish(reply, "WatchApprovals")
    }

    pub async fn decide(&mut self, id: String, decision: Decision) -> Result<DecideResponse> {
        let request = self.request(DecideRequest { id, decision: decision.into() });
        let reply = self.approvals.decide(request).await;
        self.finish(reply, "Decide")
    }

    pub async fn list_grants(&mut self) -> Result<Vec<Grant>> {
        let request = self.request(ListGrantsRequest {});
        let reply = self.approvals.list_grants(request).await;
        self.finish(reply, "ListGrants").map(|reply| reply.grants)
    }

    pub async fn revoke_grant(&mut self, id: String) -> Result<Option<Grant>> {
        let request = self.request(RevokeGrantRequest { id });
        let reply = self.approvals.revoke_grant(request).await;
        self.finish(reply, "RevokeGrant").map(|reply| reply.grant)
    }

    /// Turns an error in the middle of the stream of `rpc` into the same one-line message as a
    /// failed call.
    pub fn stream_error(&self, status: Status, rpc: &'static str) -> anyhow::Error {
        self.status_error(&status, rpc)
    }

    /// Starts a query and returns the stream of its events. The deadline covers the whole query.
    pub async fn query(&mut self, query: QueryRequest) -> Result<tonic::Streaming<QueryEvent>> {
        let request = self.request(query);
        let reply = self.queries.query(request).await;
        self.finish(reply, "Query")
    }

    /// Turns an error in the middle of a query stream into the same one-line message as a failed call.
    pub fn query_error(&self, status: Status) -> anyhow::Error {
        self.status_error(&status, "Query")
    }


    /// Wraps a message in a request whose `grpc-timeout` header is the deadline. tonic enforces
    /// that header on this side too, so a hub that never replies cannot hang the client.
    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.timeout);
        request
    }

    fn finish<T>(&self, reply: Result<Response<T>, Status>, rpc: &'static str) -> Result<T> {
        reply.map(Response::into_inner).map_err(|status| self.status_error(&status, rpc))
    }

    fn status_error(&self, status: &Status, rpc: &'static str) -> anyhow::Error {
        let target = RpcTarget {
            socket: &self.socket,
            timeout: self.timeout,
            rpc,
        };
        anyhow!(describe_status(status, &target))
    }
}
