//! Command-line arguments of the `bulkhead` client.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};

/// The socket that a default `bulkheadd` install serves on.
pub const DEFAULT_SOCKET: &str = "/run/bulkhead/hub.sock";

/// The state directory of a default `bulkheadd` install.
pub const DEFAULT_STATE: &str = "/var/lib/bulkhead";

/// The environment variable that names the hub's socket when `--socket` is absent.
pub const SOCKET_ENV: &str = "BULKHEAD_SOCKET";

#[derive(Debug, Parser)]
#[command(
    name = "bulkhead",
    version,
    about = "Command-line client of the bulkhead hub: apps, tools, tool calls and spokes"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,

    #[command(subcommand)]
    pub command: Command,
}

/// Options that every subcommand accepts, before or after the subcommand name.
#[derive(Debug, Args)]
pub struct GlobalOptions {
    /// Path of the hub's Unix socket
    #[arg(long, global = true, env = SOCKET_ENV, default_value = DEFAULT_SOCKET, value_name = "PATH")]
    pub socket: PathBuf,

    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,

    /// Deadline of each request to the hub, such as 500ms, 60s or 2m
    #[arg(
        long,
        global = true,
        default_value = "60s",
        value_name = "DURATION",
        value_parser = parse_timeout
    )]
    pub timeout: Duration,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List, register and remove apps
    #[command(subcommand)]
    Apps(AppsCommand),

    /// List the tools of one app, or of every app
    Tools(ToolsArgs),

    /// Call one tool of one app
    Call(CallArgs),

    /// Ask a question in natural language; the hub plans it on the apps and prints the answer
    Query(QueryArgs),

    /// List spokes with their processes, memory use and restarts
    Spokes,

    /// Show the hub's version, uptime and counts
    Status,

    /// Make the hub reread the manifests in its apps folder
    Reload,

    /// Report the isolation primitives this host offers and which ones spokes need but lack
    Check,
    /// Verify, show or export the hub's audit log
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print an app's captured stderr, the last 1 MiB kept by the hub
    Logs(LogsArgs),

    /// Watch the flows that wait for a decision and decide each one; with --json, print them as
    /// JSON Lines without asking
    Approvals,

    /// Allow a pending flow once, for the rest of its session, or always
    Approve(ApproveArgs),

    /// Deny a pending flow
    Deny(DenyArgs),

    /// List and revoke stored decisions
    #[command(subcommand)]
    Grants(GrantsCommand),

    /// Print the version of this client
    Version,
}

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// List registered apps and the manifests that failed to load
    List,

    /// Register an app from a TOML manifest file
    Add(AddArgs),

    /// Stop an app's spoke and forget the app
    Remove(RemoveArgs),

    /// Show how a quarantined app's tool catalog differs from its pinned catalog
    Diff(DiffArgs),

    /// Accept a quarantined app's changed tool catalog: pin it and lift the quarantine
    Approve(AppApproveArgs),
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of every record and name the first one that fails
    Verify(AuditFileArgs),

    /// Show the last records, and with -f keep showing new ones
    Tail(TailArgs),

    /// Write every record as JSON Lines
    Export(ExportArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("scope").required(true).args(["once", "session", "always"])))]
pub struct ApproveArgs {
    /// Id of the pending request, as `bulkhead approvals` shows it
    #[arg(value_name = "ID")]
    pub id: String,

    /// Allow this call only
    #[arg(long)]
    pub once: bool,

    /// Allow this flow for the rest of the call's session, until the hub stops
    #[arg(long)]
    pub session: bool,

    /// Allow this flow for the caller in every session until revoked; not allowed for
    /// destructive tools
    #[arg(long)]
    pub always: bool,
}

#[derive(Debug, Args)]
pub struct DenyArgs {
    /// Id of the pending request, as `bulkhead approvals` shows it
    #[arg(value_name = "ID")]
    pub id: String,
}

#[derive(Debug, Subcommand)]
pub enum GrantsCommand {
    /// List the stored decisions: every grant for root, their own for other users
    List,

    /// Remove a stored decision, so that its flow needs a decision again
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Id of the grant, as `bulkhead grants list` shows it
    #[arg(value_name = "ID")]
    pub id: String,
}

#[derive(Debug, Args)]
pub struct AuditFileArgs {
    /// The hub's state directory, which contains audit.log
    #[arg(long, default_value = DEFAULT_STATE, value_name = "DIR")]
    pub state: PathBuf,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub file: AuditFileArgs,

    /// Number of records to show before following
    #[arg(short = 'n', long, default_value_t = 20, value_name = "COUNT")]
    pub lines: usize,

    /// Keep showing records as the hub appends them, until interrupted
    #[arg(short = 'f', long)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub file: AuditFileArgs,

    /// Write to this file instead of stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Manifest file in TOML, or - to read it from stdin
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Replace an app that is already registered under the same name
    #[arg(long)]
    pub replace: bool,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Name of the app to remove
    #[arg(value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Name of the app
    #[arg(value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct AppApproveArgs {
    /// Name of the app
    #[arg(value_name = "NAME")]
    pub name: String,

    /// Approve only if the offered catalog still has this SHA-256, as `bulkhead apps diff` shows
    /// it, so that a catalog that changed again after the review is not approved unseen
    #[arg(long, value_name = "SHA256")]
    pub catalog: Option<String>,
}

#[derive(Debug, Args)]
pub struct ToolsArgs {
    /// Only list the tools of this app
    #[arg(value_name = "APP")]
    pub app: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Name of the app
    #[arg(value_name = "APP")]
    pub app: String,

    /// Keep printing new lines until interrupted
    #[arg(long, short)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct CallArgs {
    /// Name of the app
    #[arg(value_name = "APP")]
    pub app: String,

    /// Name of the tool
    #[arg(value_name = "TOOL")]
    pub tool: String,

    /// Tool arguments as a JSON object, or - to read them from stdin; the default is {}
    #[arg(long = "args", value_name = "JSON", allow_hyphen_values = true)]
    pub arguments: Option<String>,

    /// Session id, so that the hub's flow guard sees the earlier calls of the same session; the
    /// default is a session of its own for this call
    #[arg(long, value_name = "ID", default_value = "")]
    pub session: String,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The query, such as "Price Main Street to Elm Avenue with both apps"
    #[arg(value_name = "TEXT")]
    pub text: String,

    /// Session id, so that the query can use the outputs of the session's earlier queries. By
    /// default the query gets a session of its own
    #[arg(long, value_name = "ID", default_value = "")]
    pub session: String,

    /// Let the planner use only this app; repeat it for several apps; the default is every app
    #[arg(long = "app", value_name = "APP")]
    pub apps: Vec<String>,

    /// Act as the approver of this query's flows: ask on stderr and read each decision (once,
    /// session, always or deny) from stdin. The end of stdin denies
    #[arg(long)]
    pub approve: bool,
}

/// Parses a `--timeout` value such as "60s" or "1m 30s", rejecting zero.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|err| format!("{err}; write a duration such as 500ms, 60s or 2m"))?;
    if duration.is_zero() {
        return Err("the timeout must be greater than zero; write a duration such as 60s".into());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Cli {
        let mut argv = vec!["bulkhead", "--socket", "/tmp/test.sock"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv) {
            Ok(cli) => cli,
            Err(err) => panic!("parse {args:?}: {err}"),
        }
    }

    fn parse_error(args: &[&str]) -> clap::Error {
        let mut argv = vec!["bulkhead", "--socket", "/tmp/test.sock"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv) {
            Ok(cli) => panic!("parse {args:?} succeeded: {cli:?}"),
            Err(err) => err,
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn json_flag_before_subcommand() {
        assert!(parse(&["--json", "spokes"]).global.json);
    }

    #[test]
    fn json_flag_after_subcommand() {
        assert!(parse(&["spokes", "--json"]).global.json);
        assert!(parse(&["apps", "list", "--json"]).global.json);
        assert!(parse(&["call", "notes", "read", "--json"]).global.json);
    }

    #[test]
    fn json_flag_defaults_off() {
        assert!(!parse(&["status"]).global.json);
    }

    #[test]
    fn socket_option_after_subcommand() {
        let cli = parse(&["status", "--socket", "/tmp/other.sock"]);
        assert_eq!(cli.global.socket, PathBuf::from("/tmp/other.sock"));
    }

    #[test]
    fn socket_reads_environment_variable() {
        let command = Cli::command();
        let socket = command.get_arguments().find(|arg| arg.get_id() == "socket");
        let socket = socket.expect("the socket argument exists");
        assert_eq!(socket.get_env(), Some(std::ffi::OsStr::new(SOCKET_ENV)));
        let defaults = socket.get_default_values();
        assert_eq!(defaults, [std::ffi::OsStr::new(DEFAULT_SOCKET)]);
    }

    #[test]
    fn timeout_defaults_to_sixty_seconds() {
        assert_eq!(parse(&["status"]).global.timeout, Duration::from_secs(60));
    }

    #[test]
    fn timeout_accepts_units() {
        let cli = parse(&["status", "--timeout", "250ms"]);
        assert_eq!(cli.global.timeout, Duration::from_millis(250));
        let cli = parse(&["--timeout", "2m", "status"]);
        assert_eq!(cli.global.timeout, Duration::from_secs(120));
    }

    #[test]
    fn timeout_rejects_zero_and_garbage() {
        let err = parse_error(&["status", "--timeout", "0s"]);
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(err.to_string().contains("greater than zero"), "{err}");
        let err = parse_error(&["status", "--timeout", "soon"]);
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn call_takes_app_tool_and_args() {
        let cli = parse(&["call", "notes", "read", "--args", r#"{"path":"a"}"#]);
        let Command::Call(call) = cli.command else {
            panic!("expected call, got {:?}", cli.command);
        };
        assert_eq!(call.app, "notes");
        assert_eq!(call.tool, "read");
        assert_eq!(call.arguments.as_deref(), Some(r#"{"path":"a"}"#));
    }

    #[test]
    fn call_args_dash_means_stdin() {
        let cli = parse(&["call", "notes", "read", "--args", "-"]);
        let Command::Call(call) = cli.command else {
            panic!("expected call, got {:?}", cli.command);
        };
        assert_eq!(call.arguments.as_deref(), Some("-"));
    }

    #[test]
    fn call_without_tool_is_usage_error() {
        let err = parse_error(&["call", "notes"]);
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn apps_add_takes_file_and_replace() {
        let cli = parse(&["apps", "add", "notes.toml", "--replace"]);
        let Command::Apps(AppsCommand::Add(add)) = cli.command else {
            panic!("expected apps add, got {:?}", cli.command);
        };
        assert_eq!(add.file, PathBuf::from("notes.toml"));
        assert!(add.replace);
    }

    #[test]
    fn approve_needs_exactly_one_scope() {
        let Command::Approve(approve) = parse(&["approve", "ab12cd34", "--session"]).command else {
            panic!("expected approve");
        };
        assert_eq!(approve.id, "ab12cd34");
        assert!(approve.session);
        assert!(!approve.once);
        assert!(!approve.always);
        let missing = parse_error(&["approve", "ab12cd34"]);
        assert_eq!(missing.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let both = parse_error(&["approve", "ab12cd34", "--once", "--always"]);
        assert_eq!(both.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn grants_revoke_takes_an_id() {
        let Command::Grants(GrantsCommand::Revoke(revoke)) = parse(&["grants", "revoke", "g1"]).command else {
            panic!("expected grants revoke");
        };
        assert_eq!(revoke.id, "g1");
        assert!(parse(&["grants", "list", "--json"]).global.json);
    }

    #[test]
    fn apps_approve_takes_name_and_catalog() {
        let cli = parse(&["apps", "approve", "notes", "--catalog", "ab12"]);
        let Command::Apps(AppsCommand::Approve(approve)) = cli.command else {
            panic!("expected apps approve, got {:?}", cli.command);
        };
        assert_eq!(approve.name, "notes");
        assert_eq!(approve.catalog.as_deref(), Some("ab12"));
        let Command::Apps(AppsCommand::Diff(diff)) = parse(&["apps", "diff", "notes"]).command else {
            panic!("expected apps diff");
        };
        assert_eq!(diff.name, "notes");
    }

    #[test]
    fn query_takes_text_session_and_apps() {
        let cli = parse(&["query", "price it", "--session", "s1", "--app", "a", "--app", "b", "--json", "--approve"]);
        assert!(cli.global.json);
        let Command::Query(query) = cli.command else {
            panic!("expected query, got {:?}", cli.command);
        };
        assert_eq!(query.text, "price it");
        assert_eq!(query.session, "s1");
        assert_eq!(query.apps, vec!["a".to_string(), "b".to_string()]);
        assert!(query.approve);
    }

    #[test]
    fn tools_app_is_optional() {
        let Command::Tools(all) = parse(&["tools"]).command else {
            panic!("expected tools");
        };
        assert_eq!(all.app, None);
        let Command::Tools(one) = parse(&["tools", "notes"]).command else {
            panic!("expected tools");
        };
        assert_eq!(one.app.as_deref(), Some("notes"));
    }
}
