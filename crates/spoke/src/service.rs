//! The Spoke gRPC service that the hub calls over the channel.

use std::sync::Arc;
use std::time::Duration;

use bulkhead_proto::v1::spoke_service_server::SpokeService;
use bulkhead_proto::v1::{
    AskAnswer, CatalogUpdate, ShutdownRequest, SpokeAsk, ShutdownResponse, SpokeCallToolRequest, SpokeCallToolResponse,
    SpokeListToolsRequest, SpokeListToolsResponse, StartRequest, StartResponse, ToolDescriptor,
    WatchCatalogRequest,
};
use rmcp::model::{CallToolRequestParams, JsonObject};
use tokio::sync::{mpsc, watch, Mutex, OnceCell};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::app::{self, McpClient};
use crate::asks::Asks;
use crate::reaper::{AppExit, Reaper};

/// The shared handle that tonic serves.
#[derive(Clone)]
pub struct SpokeHandle(pub Arc<Spoke>);

impl std::ops::Deref for SpokeHandle {
    type Target = Spoke;
    fn deref(&self) -> &Spoke {
        &self.0
    }
}

/// The runtime's state: at most one app, started once by the hub's Start call.
pub struct Spoke {
    reaper: Reaper,
    app: OnceCell<Arc<StartedApp>>,
    starting: Mutex<()>,
    shutdown: watch::Sender<Option<Duration>>,
}

struct StartedApp {
    pid: nix::unistd::Pid,
    client: McpClient,
    tools_changed: watch::Receiver<u64>,
    /// The count of list_changed notifications before the tools/list whose catalog Start returned.
    listed_generation: u64,
    asks: Arc<Asks>,
}

impl Spoke {
    pub fn new(reaper: Reaper, shutdown: watch::Sender<Option<Duration>>) -> Spoke {
        Spoke { reaper, app: OnceCell::new(), starting: Mutex::new(()), shutdown }
    }

    fn started(&self) -> Result<Arc<StartedApp>, Status> {
        self.app
            .get()
            .cloned()
            .ok_or_else(|| Status::failed_precondition("the app is not started; call Start first"))
    }

    /// Fails with UNAVAILABLE when the app has already exited.
    fn check_alive(&self) -> Result<(), Status> {
        match *self.reaper.exit().borrow() {
            Some(exit) => Err(app_exited(exit)),
            None => Ok(()),
        }
    }

    /// Runs `work` unless the app exits first, in which case the caller gets UNAVAILABLE.
    async fn unless_app_exits<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        let mut exit = self.reaper.exit();
        tokio::select! {
            result = work => result,
            changed = exit.wait_for(Option::is_some) => match changed {
                Ok(exit) => Err(app_exited(exit.unwrap_or(AppExit::Exited(-1)))),
                Err(_) => Err(Status::unavailable("the app's reaper stopped")),
            },
        }
    }
}

fn app_exited(exit: AppExit) -> Status {
    Status::unavailable(format!("the app {exit}"))
}

fn descriptors(tools: Vec<rmcp::model::Tool>) -> Vec<ToolDescriptor> {
    tools
        .into_iter()
        .map(|tool| ToolDescriptor {
            name: tool.name.to_string(),
            description: tool.description.map(|d| d.to_string()).unwrap_or_default(),
            input_schema_json: serde_json::to_string(&*tool.input_schema).unwrap_or_else(|_| "{}".into()),
        })
        .collect()
}

#[tonic::async_trait]
impl SpokeService for SpokeHandle {
    type WatchCatalogStream = ReceiverStream<Result<CatalogUpdate, Status>>;
    type AsksStream = ReceiverStream<Result<SpokeAsk, Status>>;

    async fn start(&self, request: Request<StartRequest>) -> Result<Response<StartResponse>, Status> {
        let request = request.into_inner();
        let _guard = self.starting.lock().await;
        if self.app.get().is_some() {
            return Err(Status::already_exists("the app is already started"));
        }
        tracing::info!(app = %request.app, command = %request.command, "starting the app");
        let started = self
            .unless_app_exits(async {
                app::start(&request, &self.reaper)
                    .await
                    .map_err(|error| Status::unavailable(error.to_string()))
            })
            .await?;
        let listed_generation = *started.tools_changed.borrow();
        let tools = self
            .unless_app_exits(async {
                started
                    .client
                    .list_all_tools()
                    .await
                    .map_err(|error| Status::unavailable(format!("tools/list failed: {error}")))
            })
            .await?;
        let server = started.client.peer_info().and_then(|info| info.server_info.clone());
        let response = StartResponse {
            app_pid: u32::try_from(started.pid.as_raw()).unwrap_or(0),
            server_name: server.as_ref().map(|s| s.name.clone()).unwrap_or_default(),
            server_version: server.as_ref().map(|s| s.version.clone()).unwrap_or_default(),
            tools: descriptors(tools),
        };
        let app = StartedApp {
            pid: started.pid,
            client: started.client,
            tools_changed: started.tools_changed,
            listed_generation,
            asks: started.asks,
        };
        let _ = self.app.set(Arc::new(app));
        Ok(Response::new(response))
    }

    async fn list_tools(
        &self,
        _request: Request<SpokeListToolsRequest>,
    ) -> Result<Response<SpokeListToolsResponse>, Status> {
        let app = self.started()?;
        self.check_alive()?;
        let tools = self
            .unless_app_exits(async {
                app.client
                    .list_all_tools()
                    .await
                    .map_err(|error| Status::unavailable(format!("tools/list failed: {error}")))
            })
            .await?;
        Ok(Response::new(SpokeListToolsResponse { tools: descriptors(tools) }))
    }

    async fn call_tool(
        &self,
        request: Request<SpokeCallToolRequest>,
    ) -> Result<Response<SpokeCallToolResponse>, Status> {
        let request = request.into_inner();
        let app = self.started()?;
        self.check_alive()?;
        let arguments: Option<JsonObject> = if request.arguments_json.trim().is_empty() {
            None
        } else {
            let value: serde_json::Value = serde_json::from_str(&request.arguments_json)
                .map_err(|error| Status::invalid_argument(format!("arguments are not valid JSON: {error}")))?;
            match value {
                serde_json::Value::Object(map) => Some(map),
                _ => return Err(Status::invalid_argument("arguments must be a JSON object")),
            }
        };
        let mut params = CallToolRequestParams::new(request.tool.clone());
        params.arguments = arguments;
        let result = self
            .unless_app_exits(async {
                app.client.call_tool(params).await.map_err(|error| match error {
                    rmcp::ServiceError::McpError(data) => Status::unknown(format!(
                        "the app returned an MCP error for tools/call {}: {}",
                        request.tool, data.message
                    )),
                    other => Status::unavailable(format!("tools/call {} failed: {other}", request.tool)),
                })
            })
            .await?;
        let is_error = result.is_error.unwrap_or(false);
        let result_json = serde_json::to_string(&result)
            .map_err(|error| Status::internal(format!("cannot encode the tool result: {error}")))?;
        Ok(Response::new(SpokeCallToolResponse { result_json, is_error }))
    }

    async fn watch_catalog(
        &self,
        _request: Request<WatchCatalogRequest>,
    ) -> Result<Response<Self::WatchCatalogStream>, Status> {
        let app = self.started()?;
        self.check_alive()?;
        let (updates, stream) = mpsc::channel(1);
        let spoke = self.clone();
        tokio::spawn(async move { spoke.send_catalog_updates(app, updates).await });
        Ok(Response::new(ReceiverStream::new(stream)))
    }

    async fn asks(&self, request: Request<Streaming<AskAnswer>>) -> Result<Response<Self::AsksStream>, Status> {
        let app = self.started()?;
        let stream = app
            .asks
            .take_stream()
            .ok_or_else(|| Status::already_exists("the ask channel is already open"))?;
        let mut answers = request.into_inner();
        let asks = app.asks.clone();
        tokio::spawn(async move {
            loop {
                match answers.message().await {
                    Ok(Some(answer)) => asks.deliver(answer),
                    Ok(None) => break,
                    Err(status) => {
                        tracing::warn!("the hub's answers on the ask channel failed: {}", status.message());
                        break;
                    }
                }
            }
            asks.close();
        });
        Ok(Response::new(ReceiverStream::new(stream)))
    }

    async fn shutdown(&self, request: Request<ShutdownRequest>) -> Result<Response<ShutdownResponse>, Status> {
        let grace = Duration::from_millis(request.into_inner().grace_ms);
        self.shutdown.send_replace(Some(grace));
        Ok(Response::new(ShutdownResponse {}))
    }
}

impl SpokeHandle {
    /// Lists the app's tools after each tools/list_changed notification and sends them, until the
    /// app exits or the hub closes the stream. A notification that came after Start listed the
    /// tools but before the stream opened is sent at once, so none falls between the two.
    async fn send_catalog_updates(&self, app: Arc<StartedApp>, updates: mpsc::Sender<Result<CatalogUpdate, Status>>) {
        let mut changes = app.tools_changed.clone();
        let mut listed_generation = app.listed_generation;
        loop {
            let generation = *changes.borrow_and_update();
            if generation == listed_generation {
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return },
                    () = updates.closed() => return,
                }
                continue;
            }
            listed_generation = generation;
            let listed = self
                .unless_app_exits(async {
                    app.client
                        .list_all_tools()
                        .await
                        .map_err(|error| Status::unavailable(format!("tools/list after list_changed failed: {error}")))
                })
                .await;
            let update = listed.map(|tools| CatalogUpdate { generation, tools: descriptors(tools) });
            let failed = update.is_err();
            if updates.send(update).await.is_err() || failed {
                return;
            }
        }
    }
}

impl Spoke {
    /// Returns the app's pid, once started.
    pub fn app_pid(&self) -> Option<nix::unistd::Pid> {
        self.app.get().map(|app| app.pid)
    }

    pub fn exit(&self) -> watch::Receiver<Option<AppExit>> {
        self.reaper.exit()
    }
}
