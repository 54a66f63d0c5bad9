//! The subcommands. Each one checks its local input first, then connects to the hub, sends one
//! request and prints the reply as text or JSON.

mod apps;
mod approvals;
mod audit;
mod call;
mod catalog;
mod check;
mod decide;
mod grants;
mod logs;
mod query;
mod spokes;
mod status;
mod tools;

use std::process::ExitCode;

use anyhow::Result;

use crate::args::{AppsCommand, AuditCommand, Cli, Command, GlobalOptions, GrantsCommand};
use crate::connect::Hub;
use crate::output::Output;

/// Runs the parsed command line and returns the process's exit code. An `Err` is a failure that
/// `main` reports as one "error: " line with exit code 1.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let output = Output::new(cli.global.json);
    let global = &cli.global;
    match cli.command {
        Command::Apps(AppsCommand::List) => apps::list(global, &output).await,
        Command::Apps(AppsCommand::Add(add)) => apps::add(global, &output, &add).await,
        Command::Apps(AppsCommand::Remove(remove)) => {
            apps::remove(global, &output, remove.name).await
        }
        Command::Apps(AppsCommand::Diff(diff)) => catalog::diff(global, &output, diff.name).await,
        Command::Apps(AppsCommand::Approve(approve)) => {
            catalog::approve(global, &output, approve).await
        }
        Command::Tools(tools) => tools::run(global, &output, tools.app).await,
        Command::Call(call) => call::run(global, &output, call).await,
        Command::Query(query) => query::run(global, &output, query).await,
        Command::Spokes => spokes::run(global, &output).await,
        Command::Status => status::status(global, &output).await,
        Command::Reload => status::reload(global, &output).await,
        Command::Logs(logs) => logs::run(global, &output, logs).await,
        Command::Approvals => approvals::watch(global, &output).await,
        Command::Approve(approve) => decide::approve(global, &output, approve).await,
        Command::Deny(deny) => decide::deny(global, &output, deny.id).await,
        Command::Grants(GrantsCommand::List) => grants::list(global, &output).await,
        Command::Grants(GrantsCommand::Revoke(revoke)) => grants::revoke(global, &output, revoke.id).await,
        Command::Version => status::version(&output),
        Command::Check => check::run(&output),
        Command::Audit(AuditCommand::Verify(file)) => audit::verify(&output, &file.state),
        Command::Audit(AuditCommand::Tail(tail)) => audit::tail(&output, &tail).await,
        Command::Audit(AuditCommand::Export(export)) => audit::export(&output, &export),
    }
}

async fn connect(global: &GlobalOptions) -> Result<Hub> {
    Hub::connect(&global.socket, global.timeout).await
}
