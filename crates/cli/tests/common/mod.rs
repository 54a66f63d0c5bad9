//! A canned hub for end-to-end tests: a tonic server for AgentService and OperatorService on a
//! Unix socket in a temp directory, and a runner for the real `bulkhead` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bulkhead_proto::v1::agent_service_server::{AgentService, AgentServiceServer};
use bulkhead_proto::v1::operator_service_server::{OperatorService, OperatorServiceServer};
use bulkhead_proto::v1::{
    App, CallToolRequest, CallToolResponse, GetStatusRequest, GetStatusResponse, ListAppsRequest,
    ListAppsResponse, ListSpokesRequest, ListSpokesResponse, ListToolsRequest, ListToolsResponse,
    ManifestProblem, RegisterAppRequest, RegisterAppResponse, ReloadRequest, ReloadResponse,
    RemoveAppRequest, RemoveAppResponse, Spoke, Tool,
};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

/// The problem that every app listing and reload of the mock reports.
pub const PROBLEM_PATH: &str = "/etc/bulkhead/apps.d/broken.toml";
pub const PROBLEM_MESSAGE: &str = "line 3: unknown key `comand`; did you mean `command`?";

/// How long the "slow" tool sleeps, far beyond the deadlines that tests set.
const SLOW_TOOL_DELAY: Duration = Duration::from_secs(30);

/// Requests the mock received, for tests to check what the client sent.
#[derive(Default)]
pub struct Received {
    pub calls: Mutex<Vec<CallToolRequest>>,
    pub registered: Mutex<Vec<RegisterAppRequest>>,
    pub removed: Mutex<Vec<String>>,
    pub tool_filters: Mutex<Vec<String>>,
}

/// A running mock hub. Dropping it stops the server and removes the temp directory.
pub struct MockHub {
    pub dir: TempDir,
    pub socket: PathBuf,
    pub received: Arc<Received>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for MockHub {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

impl MockHub {
    /// Starts the mock on `hub.sock` in a new temp directory. Call it inside a tokio runtime.
    pub fn start() -> MockHub {
        let dir = tempfile::tempdir().expect("create temp dir");
        let socket = dir.path().join("hub.sock");
        let listener = UnixListener::bind(&socket).expect("bind mock hub socket");
        let received = Arc::new(Received::default());
        let service = Mock {
            socket: socket.clone(),
            received: received.clone(),
        };
        let (shutdown, stopped) = oneshot::channel::<()>();

        tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(AgentServiceServer::new(service.clone()))
                .add_service(OperatorServiceServer::new(service))
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(err) = served {
                eprintln!("mock hub stopped with an error: {err}");
            }
        });

        MockHub {
            dir,
            socket,
            received,
            shutdown: Some(shutdown),
        }
    }

    /// Runs `bulkhead --socket SOCKET ARGS...` with no stdin.
    pub async fn run(&self, args: &[&str]) -> Output {
        run_bulkhead(Some(&self.socket), args, None).await
    }

    /// Runs `bulkhead --socket SOCKET ARGS...` with `stdin` piped in.
    pub async fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        run_bulkhead(Some(&self.socket), args, Some(stdin)).await
    }
}

/// Runs the `bulkhead` binary with BULKHEAD_SOCKET removed from its environment, adding
/// `--socket SOCKET` when `socket` is given, and waits at most 30 seconds for it.
pub async fn run_bulkhead(socket: Option<&Path>, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_bulkhead"));
    command.env_remove("BULKHEAD_SOCKET");
    if let Some(socket) = socket {
        command.arg("--socket").arg(socket);
    }
    command.args(args);
    run_command(command, stdin).await
}

/// Runs a prepared command with captured output, killing it after 30 seconds.
pub async fn run_command(mut command: tokio::process::Command, stdin: Option<&str>) -> Output {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("spawn bulkhead");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(text.as_bytes()).await.expect("write stdin");
    }
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await;
    output
        .expect("bulkhead finishes within 30s")
        .expect("collect bulkhead output")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

pub fn exit_code(output: &Output) -> i32 {
    output
        .status
        .code()
        .expect("bulkhead exited rather than being killed")
}

/// Parses stdout as exactly one JSON document.
pub fn stdout_json(output: &Output) -> serde_json::Value {
    let text = stdout(output);
    serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("stdout is not one JSON document ({err}): {text}"))
}

#[derive(Clone)]
struct Mock {
    socket: PathBuf,
    received: Arc<Received>,
}

fn app(name: &str, description: &str, exposed: &[&str], state: &str) -> App {
    App {
        name: name.into(),
        description: description.into(),
        origin: format!("/etc/bulkhead/apps.d/{name}.toml"),
        manifest_path: format!("/etc/bulkhead/apps.d/{name}.toml"),
        exposed_tools: exposed.iter().map(|tool| (*tool).to_owned()).collect(),
        destructive_tools: if name == "mail" {
            vec!["send".into()]
        } else {
            Vec::new()
        },
        spoke_state: state.into(),
        quarantined: false,
        catalog_sha256: String::new(),
    }
}

fn tool(app: &str, name: &str, description: &str, destructive: bool) -> Tool {
    Tool {
        app: app.into(),
        name: name.into(),
        description: description.into(),
        input_schema_json: r#"{"type":"object","properties":{"path":{"type":"string"}}}"#.into(),
        destructive,
    }
}

fn problems() -> Vec<ManifestProblem> {
    vec![ManifestProblem {
        path: PROBLEM_PATH.into(),
        message: PROBLEM_MESSAGE.into(),
    }]
}

fn not_registered(app: &str) -> Status {
    Status::not_found(format!(
        "app {app} is not registered; list apps with `bulkhead apps list`"
    ))
}

/// Returns the value of the first `name = "..."` line of a manifest.
fn manifest_name(manifest: &str) -> Option<String> {
    manifest.lines().find_map(|line| {
        let value = line.trim().strip_prefix("name")?.trim().strip_prefix('=')?;
        Some(value.trim().trim_matches('"').to_owned())
    })
}

#[tonic::async_trait]
impl AgentService for Mock {
    async fn list_apps(
        &self,
        _request: Request<ListAppsRequest>,
    ) -> Result<Response<ListAppsResponse>, Status> {
        Ok(Response::new(ListAppsResponse {
            apps: vec![
                app("notes", "Keeps plain-text notes", &[], "ready"),
                app("mail", "Reads and sends mail", &["read", "send"], "stopped"),
            ],
            problems: problems(),
        }))
    }

    async fn list_tools(
        &self,
        request: Request<ListToolsRequest>,
    ) -> Result<Response<ListToolsResponse>, Status> {
        let filter = request.into_inner().app;
        self.received
            .tool_filters
            .lock()
            .expect("lock")
            .push(filter.clone());
        let all = vec![
            tool("notes", "read", "Read a note\nby its path", false),
            tool("notes", "delete", "Delete a note", true),
            tool("mail", "send", "Send a mail to one recipient", true),
        ];
        let tools: Vec<Tool> = match filter.as_str() {
            "" => all,
            "notes" | "mail" => all.into_iter().filter(|tool| tool.app == filter).collect(),
            "empty" => Vec::new(),
            other => return Err(not_registered(other)),
        };
        Ok(Response::new(ListToolsResponse { tools }))
    }

    async fn call_tool(
        &self,
        request: Request<CallToolRequest>,
    ) -> Result<Response<CallToolResponse>, Status> {
        let call = request.into_inner();
        self.received.calls.lock().expect("lock").push(call.clone());
        if call.app != "notes" {
            return Err(not_registered(&call.app));
        }
        match call.tool.as_str() {
            "read" => Ok(Response::new(CallToolResponse {
                result_json: r#"{"content":[{"type":"text","text":"buy milk"}],"isError":false}"#
                    .into(),
                is_error: false,
                text: "buy milk".into(),
            })),
            "fail" => Ok(Response::new(CallToolResponse {
                result_json:
                    r#"{"content":[{"type":"text","text":"no note at missing.txt"}],"isError":true}"#
                        .into(),
                is_error: true,
                text: "no note at missing.txt".into(),
            })),
            "slow" => {
                tokio::time::sleep(SLOW_TOOL_DELAY).await;
                Err(Status::internal("the slow tool outlived every test deadline"))
            }
            "crash" => Err(Status::unavailable(
                "spoke notes exited (killed by SIGKILL); it restarts in 2s, so retry then",
            )),
            "boom" => Err(Status::internal("audit log write failed")),
            other => Err(Status::not_found(format!(
                "app notes has no tool {other}; list its tools with `bulkhead tools notes`"
            ))),
        }
    }
}

#[tonic::async_trait]
impl OperatorService for Mock {
    async fn register_app(
        &self,
        request: Request<RegisterAppRequest>,
    ) -> Result<Response<RegisterAppResponse>, Status> {
        let register = request.into_inner();
        self.received
            .registered
            .lock()
            .expect("lock")
            .push(register.clone());
        let Some(name) = manifest_name(&register.manifest_toml) else {
            return Err(Status::invalid_argument(format!(
                "manifest {}: missing key `name`; add name = \"...\"",
                register.origin
            )));
        };
        if name == "notes" && !register.replace {
            return Err(Status::already_exists(
                "app notes is already registered; pass --replace to replace it",
            ));
        }
        let mut registered = app(&name, "Registered by a test", &[], "stopped");
        registered.origin = "registered".into();
        Ok(Response::new(RegisterAppResponse {
            app: Some(registered),
        }))
    }

    async fn remove_app(
        &self,
        request: Request<RemoveAppRequest>,
    ) -> Result<Response<RemoveAppResponse>, Status> {
        let name = request.into_inner().name;
        self.received
            .removed
            .lock()
            .expect("lock")
            .push(name.clone());
        match name.as_str() {
            "notes" => Err(Status::failed_precondition(
                "app notes comes from the apps folder; delete /etc/bulkhead/apps.d/notes.toml \
                 and run `bulkhead reload`",
            )),
            "scratch" => Ok(Response::new(RemoveAppResponse {})),
            other => Err(not_registered(other)),
        }
    }

    async fn list_spokes(
        &self,
        _request: Request<ListSpokesRequest>,
    ) -> Result<Response<ListSpokesResponse>, Status> {
        Ok(Response::new(ListSpokesResponse {
            spokes: vec![
                Spoke {
                    app: "notes".into(),
                    pid: 4242,
                    app_pid: 4250,
                    state: "ready".into(),
                    started_at_ms: 1_700_000_000_123,
                    restarts: 1,
                    last_exit: "killed by SIGKILL".into(),
                    memory_bytes: 25 * 1024 * 1024 + 512 * 1024,
                    calls: 12,
                    ..Spoke::default()
                },
                Spoke {
                    app: "mail".into(),
                    pid: 0,
                    app_pid: 0,
                    state: "backoff".into(),
                    started_at_ms: 0,
                    restarts: 3,
                    last_exit: "out of memory".into(),
                    memory_bytes: 0,
                    calls: 0,
                    ..Spoke::default()
                },
            ],
        }))
    }

    async fn get_status(
        &self,
        _request: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, Status> {
        Ok(Response::new(GetStatusResponse {
            version: "0.1.0".into(),
            uptime_seconds: 2 * 3600 + 3 * 60 + 4,
            apps: 2,
            spokes: 1,
            manifest_problems: 1,
            socket: self.socket.display().to_string(),
            pending_approvals: 3,
        }))
    }

    async fn reload(
        &self,
        _request: Request<ReloadRequest>,
    ) -> Result<Response<ReloadResponse>, Status> {
        Ok(Response::new(ReloadResponse {
            apps: 2,
            problems: problems(),
        }))
    }
}
