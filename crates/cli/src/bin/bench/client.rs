//! A gRPC connection to the hub under test, over its Unix socket. Every call has a time limit.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bulkhead_proto::v1::agent_service_client::AgentServiceClient;
use bulkhead_proto::v1::operator_service_client::OperatorServiceClient;
use bulkhead_proto::v1::query_event::Event;
use bulkhead_proto::v1::query_service_client::QueryServiceClient;
use bulkhead_proto::v1::QueryRequest;
use bulkhead_proto::v1::{
    CallToolRequest, ListSpokesRequest, ListToolsRequest, RegisterAppRequest, Spoke, Tool,
};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Response, Status};

/// HTTP/2 needs an authority in the URI, but the connector dials the socket and ignores it.
const PLACEHOLDER_URI: &str = "http://[::]:50051";

/// Time allowed for connecting, registering and listing spokes.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// Time allowed for ListTools, which may start a spoke.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Time allowed for one tool call on a warm spoke.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP/2 connection to the hub. Clones share the connection.
#[derive(Clone)]
pub struct HubClient {
    agent: AgentServiceClient<Channel>,
    operator: OperatorServiceClient<Channel>,
    queries: QueryServiceClient<Channel>,
    socket: PathBuf,
}

impl HubClient {
    /// Opens a new connection to `socket`.
    pub async fn connect(socket: &Path) -> Result<HubClient> {
        let path = socket.to_path_buf();
        let connector = tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { UnixStream::connect(path).await.map(TokioIo::new) }
        });
        let channel = Endpoint::from_static(PLACEHOLDER_URI)
            .connect_timeout(CONTROL_TIMEOUT)
            .connect_with_connector(connector)
            .await
            .with_context(|| format!("failed to connect to the hub at {}", socket.display()))?;
        Ok(HubClient {
            agent: AgentServiceClient::new(channel.clone()),
            operator: OperatorServiceClient::new(channel.clone()),
            queries: QueryServiceClient::new(channel),
            socket: socket.to_path_buf(),
        })
    }

    /// Registers an app from manifest text, replacing none.
    pub async fn register_app(&mut self, manifest_toml: String) -> Result<()> {
        let request = RegisterAppRequest {
            manifest_toml,
            origin: "bulkhead-bench".to_string(),
            replace: false,
        };
        let reply = self.operator.register_app(request);
        finish(&self.socket, "RegisterApp", CONTROL_TIMEOUT, reply)
            .await
            .map(drop)
    }

    /// Lists the tools of `app`, starting its spoke when none runs.
    pub async fn list_tools(&mut self, app: &str) -> Result<Vec<Tool>> {
        let reply = self.agent.list_tools(ListToolsRequest {
            app: app.to_string(),
        });
        Ok(finish(&self.socket, "ListTools", START_TIMEOUT, reply)
            .await?
            .tools)
    }

    /// Calls `tool` of `app` with `{}` as arguments and fails when the tool reports an error.
    pub async fn call_tool(&mut self, app: &str, tool: &str) -> Result<()> {
        let request = CallToolRequest {
            app: app.to_string(),
            tool: tool.to_string(),
            arguments_json: "{}".to_string(),
            session_id: String::new(),
        };
        let reply = self.agent.call_tool(request);
        let response = finish(&self.socket, "CallTool", CALL_TIMEOUT, reply).await?;
        if response.is_error {
            bail!("{app}.{tool} returned a tool error: {}", response.text);
        }
        Ok(())
    }

    /// Runs a query and returns its answer and the LLM calls it made. A query that ends with an
    /// error event, or with no answer, fails.
    pub async fn query(&mut self, text: &str) -> Result<(String, u32)> {
        let request = QueryRequest { session_id: String::new(), text: text.to_string(), apps: Vec::new() };
        let reply = self.queries.query(request);
        let mut stream = finish(&self.socket, "Query", START_TIMEOUT, reply).await?;
        let mut answer = None;
        loop {
            let message = tokio::time::timeout(START_TIMEOUT, stream.message())
                .await
                .map_err(|_| anyhow!("Query on {} timed out after {START_TIMEOUT:?}", self.socket.display()))?
                .map_err(|status| anyhow!("Query failed: {:?}: {}", status.code(), status.message()))?;
            let Some(message) = message else { break };
            match message.event {
                Some(Event::Answer(done)) => answer = Some((done.text, done.llm_calls)),
                Some(Event::StepFinished(step)) if !step.ok => bail!("query step {} failed: {}", step.id, step.error),
                Some(Event::Error(error)) => bail!("query failed: {}", error.message),
                _ => {}
            }
        }
        answer.ok_or_else(|| anyhow!("the query stream ended without an answer"))
    }

    pub async fn list_spokes(&mut self) -> Result<Vec<Spoke>> {
        let reply = self.operator.list_spokes(ListSpokesRequest {});
        Ok(finish(&self.socket, "ListSpokes", CONTROL_TIMEOUT, reply)
            .await?
            .spokes)
    }

    /// Returns the spoke of `app`, failing when the hub lists none with a running process.
    pub async fn running_spoke(&mut self, app: &str) -> Result<Spoke> {
        self.list_spokes()
            .await?
            .into_iter()
            .find(|spoke| spoke.app == app && spoke.pid != 0)
            .ok_or_else(|| anyhow!("the hub lists no running spoke for {app}; it should be warm"))
    }
}

/// Awaits `reply` within `timeout` and unwraps the response message.
async fn finish<T>(
    socket: &Path,
    rpc: &str,
    timeout: Duration,
    reply: impl Future<Output = Result<Response<T>, Status>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, reply).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(anyhow!(
            "{rpc} on {} failed: {:?}: {}",
            socket.display(),
            status.code(),
            status.message()
        )),
        Err(_) => Err(anyhow!(
            "{rpc} on {} timed out after {timeout:?}",
            socket.display()
        )),
    }
}
