//! `bulkhead apps list|add|remove`.

use std::io::{self, Read};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use bulkhead_proto::v1::{App, ManifestProblem, RegisterAppRequest};
use serde::Serialize;

use super::connect;
use crate::args::{AddArgs, GlobalOptions};
use crate::errors::io_message;
use crate::output::Output;
use crate::table::Table;

/// An app as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct AppJson {
    pub name: String,
    pub description: String,
    pub origin: String,
    pub manifest_path: String,
    pub exposed_tools: Vec<String>,
    pub destructive_tools: Vec<String>,
    pub spoke_state: String,
    pub quarantined: bool,
    pub catalog_sha256: String,
}

impl From<App> for AppJson {
    fn from(app: App) -> Self {
        AppJson {
            name: app.name,
            description: app.description,
            origin: app.origin,
            manifest_path: app.manifest_path,
            exposed_tools: app.exposed_tools,
            destructive_tools: app.destructive_tools,
            spoke_state: app.spoke_state,
            quarantined: app.quarantined,
            catalog_sha256: app.catalog_sha256,
        }
    }
}

/// A manifest that failed to load, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct ProblemJson {
    pub path: String,
    pub message: String,
}

impl From<ManifestProblem> for ProblemJson {
    fn from(problem: ManifestProblem) -> Self {
        ProblemJson {
            path: problem.path,
            message: problem.message,
        }
    }
}

#[derive(Serialize)]
struct AppListJson {
    apps: Vec<AppJson>,
    problems: Vec<ProblemJson>,
}

#[derive(Serialize)]
struct RemovedJson {
    removed: String,
}

pub async fn list(global: &GlobalOptions, output: &Output) -> Result<ExitCode> {
    let reply = connect(global).await?.list_apps().await?;

    if output.json {
        let list = AppListJson {
            apps: reply.apps.into_iter().map(AppJson::from).collect(),
            problems: reply.problems.into_iter().map(ProblemJson::from).collect(),
        };
        output.print_json(&list)?;
        return Ok(ExitCode::SUCCESS);
    }

    let table = app_table(&reply.apps);
    if table.is_empty() {
        output.print_text("no apps registered; add one with `bulkhead apps add FILE`")?;
    } else {
        output.print_table(&table, true)?;
    }
    warn_problems(output, &reply.problems);
    Ok(ExitCode::SUCCESS)
}

pub async fn add(global: &GlobalOptions, output: &Output, add: &AddArgs) -> Result<ExitCode> {
    let (manifest_toml, origin) = read_manifest(&add.file)?;
    let request = RegisterAppRequest {
        manifest_toml,
        origin,
        replace: add.replace,
    };
    let reply = connect(global).await?.register_app(request).await?;
    let app = reply.app.ok_or_else(|| {
        anyhow!("the hub accepted the manifest but returned no app; run `bulkhead apps list`")
    })?;

    if output.json {
        output.print_json(&AppJson::from(app))?;
    } else {
        output.print_text(&format!("registered app {}", app.name))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn remove(global: &GlobalOptions, output: &Output, name: String) -> Result<ExitCode> {
    connect(global).await?.remove_app(name.clone()).await?;

    if output.json {
        output.print_json(&RemovedJson { removed: name })?;
    } else {
        output.print_text(&format!("removed app {name}"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints "warning: PATH: MESSAGE" on stderr for each manifest that failed to load.
pub fn warn_problems(output: &Output, problems: &[ManifestProblem]) {
    for problem in problems {
        output.warn(&format!("{}: {}", problem.path, problem.message));
    }
}

fn app_table(apps: &[App]) -> Table {
    let mut table = Table::new(&["NAME", "STATE", "CATALOG", "TOOLS", "DESCRIPTION"]);
    for app in apps {
        let tools = if app.exposed_tools.is_empty() {
            "all".to_owned()
        } else {
            app.exposed_tools.len().to_string()
        };
        let state = if app.spoke_state.is_empty() {
            "-".to_owned()
        } else {
            app.spoke_state.clone()
        };
        let catalog = if app.quarantined {
            "quarantined"
        } else if app.catalog_sha256.is_empty() {
            "-"
        } else {
            "pinned"
        };
        table.push(vec![
            app.name.clone(),
            state,
            catalog.to_owned(),
            tools,
            app.description.clone(),
        ]);
    }
    table
}

/// Reads a manifest from a file, or from stdin for "-". Returns the text and the origin to send
/// with it, which the hub uses to name the manifest in its messages.
fn read_manifest(file: &Path) -> Result<(String, String)> {
    if file == Path::new("-") {
        let mut text = String::new();
        io::stdin()
            .read_to_string(&mut text)
            .map_err(|err| anyhow!("cannot read the manifest from stdin: {err}"))?;
        return Ok((text, "stdin".to_owned()));
    }

    let text = std::fs::read_to_string(file).map_err(|err| {
        let fix = match err.kind() {
            io::ErrorKind::NotFound => "check the path",
            io::ErrorKind::InvalidData => "save the manifest as UTF-8 text",
            _ => "check the file and its permissions",
        };
        anyhow!(
            "cannot read manifest {}: {}; {fix}",
            file.display(),
            io_message(&err)
        )
    })?;
    Ok((text, file.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, exposed: &[&str], state: &str) -> App {
        App {
            name: name.into(),
            description: format!("The {name} app"),
            origin: "registered".into(),
            manifest_path: format!("/var/lib/bulkhead/apps/{name}.toml"),
            exposed_tools: exposed.iter().map(|tool| (*tool).to_owned()).collect(),
            destructive_tools: Vec::new(),
            spoke_state: state.into(),
            quarantined: false,
            catalog_sha256: String::new(),
        }
    }

    #[test]
    fn app_table_counts_exposed_tools() {
        let mut calendar = app("calendar", &[], "ready");
        calendar.quarantined = true;
        calendar.catalog_sha256 = "ab12".into();
        let mut notes = app("notes", &[], "ready");
        notes.catalog_sha256 = "cd34".into();
        let apps = [notes, app("mail", &["send", "read"], ""), calendar];
        let expected = "\
NAME      STATE  CATALOG      TOOLS  DESCRIPTION
notes     ready  pinned       all    The notes app
mail      -      -            2      The mail app
calendar  ready  quarantined  all    The calendar app
";
        assert_eq!(app_table(&apps).render(None), expected);
    }

    #[test]
    fn app_json_field_names() {
        let json = serde_json::to_value(AppJson::from(app("notes", &["read"], "ready")));
        let json = json.expect("app serializes");
        let mut keys: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "catalog_sha256",
                "description",
                "destructive_tools",
                "exposed_tools",
                "manifest_path",
                "name",
                "origin",
                "quarantined",
                "spoke_state"
            ]
        );
        assert_eq!(json["exposed_tools"], serde_json::json!(["read"]));
    }

    #[test]
    fn read_manifest_missing_file() {
        let err = read_manifest(Path::new("/nonexistent/notes.toml")).expect_err("file is missing");
        assert_eq!(
            err.to_string(),
            "cannot read manifest /nonexistent/notes.toml: no such file or directory; check the path"
        );
    }

    #[test]
    fn read_manifest_uses_path_as_origin() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notes.toml");
        std::fs::write(&path, "name = \"notes\"\n").expect("write manifest");
        let (text, origin) = read_manifest(&path).expect("manifest reads");
        assert_eq!(text, "name = \"notes\"\n");
        assert_eq!(origin, path.display().to_string());
    }
}
