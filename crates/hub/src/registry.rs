//! The app registry: manifests from the apps folder plus apps registered over gRPC, and the host uid
//! each app runs as.
//!
//! Registered manifests are stored under `<state>/registry/<name>.toml`, and the uid table under
//! `<state>/uids.json`, both written to a temporary file, synced and renamed, so a crash leaves either
//! the old or the new version.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::HubError;
use crate::manifest::{self, Manifest};

/// The source of an app's manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file in the apps folder, managed by the operator.
    ConfigDir,
    /// Registered through the OperatorService, stored in the state directory.
    Registered,
}

impl Origin {
    pub fn as_str(&self) -> &'static str {
        match self {
            Origin::ConfigDir => "config",
            Origin::Registered => "registered",
        }
    }
}

/// One registered app.
#[derive(Debug, Clone)]
pub struct AppEntry {
    pub manifest: Arc<Manifest>,
    pub origin: Origin,
    pub path: PathBuf,
    /// The unprivileged host uid and gid the app's sandbox maps to.
    pub host_id: u32,
}

/// A manifest that failed to load.
#[derive(Debug, Clone)]
pub struct Problem {
    pub path: PathBuf,
    pub message: String,
}

pub struct Registry {
    apps_dir: PathBuf,
    store_dir: PathBuf,
    uids: UidTable,
    apps: BTreeMap<String, AppEntry>,
    problems: Vec<Problem>,
}

/// The apps a reload changed or removed, so the supervisor can stop their spokes.
#[derive(Debug, Default)]
pub struct ReloadOutcome {
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

impl Registry {
    /// Loads every manifest from the apps folder and the registered store.
    pub fn load(apps_dir: &Path, state_dir: &Path, uid_base: u32, uid_count: u32) -> Result<Registry, HubError> {
        let store_dir = state_dir.join("registry");
        create_private_dir(&store_dir)?;
        let uids = UidTable::load(state_dir.join("uids.json"), uid_base, uid_count)?;
        let mut registry = Registry {
            apps_dir: apps_dir.to_path_buf(),
            store_dir,
            uids,
            apps: BTreeMap::new(),
            problems: Vec::new(),
        };
        registry.reload()?;
        Ok(registry)
    }

    /// Rereads both manifest folders and reports which apps changed or disappeared.
    pub fn reload(&mut self) -> Result<ReloadOutcome, HubError> {
        let mut apps = BTreeMap::new();
        let mut problems = Vec::new();
        for (dir, origin) in [(&self.apps_dir, Origin::ConfigDir), (&self.store_dir, Origin::Registered)] {
            if origin == Origin::ConfigDir && !dir.exists() {
                problems.push(Problem {
                    path: dir.clone(),
                    message: "the apps folder does not exist; create it or set [paths] apps".into(),
                });
                continue;
            }
            let (loaded, failed) = manifest::load_dir(dir);
            for (path, error) in failed {
                problems.push(Problem { path, message: error.to_string() });
            }
            for (path, manifest) in loaded {
                if let Some(existing) = apps.get(&manifest.name) {
                    let existing: &AppEntry = existing;
                    problems.push(Problem {
                        path: path.clone(),
                        message: format!(
                            "app name {:?} is already used by {}; rename one of them",
                            manifest.name,
                            existing.path.display()
                        ),
                    });
                    continue;
                }
                let host_id = self.uids.id_for(&manifest.name)?;
                let name = manifest.name.clone();
                apps.insert(name, AppEntry { manifest: Arc::new(manifest), origin: origin.clone(), path, host_id });
            }
        }
        let mut outcome = ReloadOutcome::default();
        for (name, old) in &self.apps {
            match apps.get(name) {
                None => outcome.removed.push(name.clone()),
                Some(new) if new.manifest != old.manifest => outcome.changed.push(name.clone()),
                Some(_) => {}
            }
        }
        for problem in &problems {
            tracing::warn!(path = %problem.path.display(), "manifest not loaded: {}", problem.message);
        }
        self.apps = apps;
        self.problems = problems;
        Ok(outcome)
    }

    pub fn get(&self, name: &str) -> Result<AppEntry, HubError> {
        self.apps.get(name).cloned().ok_or_else(|| HubError::AppNotFound(name.to_string()))
    }

    pub fn apps(&self) -> impl Iterator<Item = &AppEntry> {
        self.apps.values()
    }

    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Validates and stores a manifest sent over gRPC. Returns the new entry and whether it replaced
    /// an app that was registered before.
    pub fn register(&mut self, text: &str, origin: &str, replace: bool) -> Result<(AppEntry, bool), HubError> {
        let manifest = Manifest::from_toml(text, Path::new(origin))
            .map_err(|error| HubError::InvalidManifest { origin: origin.to_string(), reason: error.to_string() })?;
        let mut replaced = false;
        if let Some(existing) = self.apps.get(&manifest.name) {
            if existing.origin == Origin::ConfigDir {
                return Err(HubError::AppFromConfig {
                    name: manifest.name.clone(),
                    path: existing.path.display().to_string(),
                });
            }
            if !replace {
                return Err(HubError::AppExists(manifest.name.clone()));
            }
            replaced = true;
        }
        let path = self.store_dir.join(format!("{}.toml", manifest.name));
        write_atomically(&path, text.as_bytes())?;
        let host_id = self.uids.id_for(&manifest.name)?;
        let entry = AppEntry { manifest: Arc::new(manifest), origin: Origin::Registered, path, host_id };
        self.apps.insert(entry.manifest.name.clone(), entry.clone());
        Ok((entry, replaced))
    }

    /// Forgets a registered app. Apps from the apps folder are removed by deleting their file.
    pub fn remove(&mut self, name: &str) -> Result<AppEntry, HubError> {
        let entry = self.get(name)?;
        if entry.origin == Origin::ConfigDir {
            return Err(HubError::AppFromConfig { name: name.to_string(), path: entry.path.display().to_string() });
        }
        std::fs::remove_file(&entry.path)
            .map_err(|source| HubError::Store { path: entry.path.display().to_string(), source })?;
        self.apps.remove(name);
        Ok(entry)
    }
}

/// Persistent assignment of one host uid per app name, so an app's /state keeps its owner.
struct UidTable {
    path: PathBuf,
    base: u32,
    count: u32,
    offsets: BTreeMap<String, u32>,
}

impl UidTable {
    fn load(path: PathBuf, base: u32, count: u32) -> Result<UidTable, HubError> {
        let offsets = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| HubError::Store {
                path: path.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, error),
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(HubError::Store { path: path.display().to_string(), source }),
        };
        Ok(UidTable { path, base, count, offsets })
    }

    fn id_for(&mut self, name: &str) -> Result<u32, HubError> {
        if let Some(offset) = self.offsets.get(name) {
            return Ok(self.base + offset);
        }
        let used: std::collections::BTreeSet<u32> = self.offsets.values().copied().collect();
        let offset = (0..self.count).find(|offset| !used.contains(offset)).ok_or_else(|| HubError::Store {
            path: self.path.display().to_string(),
            source: std::io::Error::other(format!(
                "all {} host uids from [sandbox] uid_base are taken; raise [sandbox] uid_count",
                self.count
            )),
        })?;
        self.offsets.insert(name.to_string(), offset);
        let text = serde_json::to_vec_pretty(&self.offsets).unwrap_or_default();
        write_atomically(&self.path, &text)?;
        Ok(self.base + offset)
    }
}

fn create_private_dir(path: &Path) -> Result<(), HubError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| HubError::Store { path: path.display().to_string(), source })
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), HubError> {
    crate::files::replace_file(path, bytes).map_err(|source| HubError::Store { path: path.display().to_string(), source })
}
