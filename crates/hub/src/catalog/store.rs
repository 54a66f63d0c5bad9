//! The pin files: one JSON file per app under `<state>/catalogs/`, each replaced atomically
//! (temporary file, fsync, rename, fsync of the folder), so a crash leaves the old or the new pin.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::pin::Catalog;
use super::CatalogError;

/// The folder under the state directory that contains the pin files.
pub const DIR_NAME: &str = "catalogs";
/// The format version a pin file carries, raised when the format changes.
const FORMAT_VERSION: u32 = 1;

/// The event that brought a catalog that differs from the pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A start of the app's spoke.
    Start,
    /// A notifications/tools/list_changed from the running app.
    ListChanged,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::ListChanged => "list_changed",
        }
    }
}

/// A catalog that differs from the pin and waits for an operator's approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quarantine {
    /// When the app was quarantined, in milliseconds since the Unix epoch.
    pub since_ms: u64,
    /// The event that brought the latest offered catalog.
    pub trigger: Trigger,
    /// The latest catalog the app offered.
    pub offered: Catalog,
}

/// The content of one pin file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinRecord {
    pub version: u32,
    pub app: String,
    /// When the pinned catalog was pinned or approved, in milliseconds since the Unix epoch.
    pub pinned_at_ms: u64,
    pub pinned: Catalog,
    pub quarantine: Option<Quarantine>,
}

impl PinRecord {
    pub fn new(app: &str, pinned: Catalog, pinned_at_ms: u64) -> PinRecord {
        PinRecord { version: FORMAT_VERSION, app: app.to_string(), pinned_at_ms, pinned, quarantine: None }
    }
}

/// The folder of pin files.
pub struct PinStore {
    dir: PathBuf,
}

impl PinStore {
    /// Opens `<state>/catalogs`, creating it with mode 0700.
    pub fn open(state: &Path) -> Result<PinStore, CatalogError> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = state.join(DIR_NAME);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| CatalogError::Store { path: dir.display().to_string(), source })?;
        Ok(PinStore { dir })
    }

    fn path(&self, app: &str) -> PathBuf {
        self.dir.join(format!("{app}.json"))
    }

    /// Reads every pin file. A file that does not parse, names another app or fails its digest
    /// check is an error, because the hub cannot tell what was pinned.
    pub fn load_all(&self) -> Result<Vec<PinRecord>, CatalogError> {
        let store_error = |source| CatalogError::Store { path: self.dir.display().to_string(), source };
        let mut records = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(store_error)? {
            let path = entry.map_err(store_error)?.path();
            if path.extension().is_none_or(|extension| extension != "json") {
                continue;
            }
            records.push(load(&path)?);
        }
        records.sort_by(|a, b| a.app.cmp(&b.app));
        Ok(records)
    }

    /// Replaces the app's pin file with `record`.
    pub fn save(&self, record: &PinRecord) -> Result<(), CatalogError> {
        let path = self.path(&record.app);
        let store_error = |source| CatalogError::Store { path: path.display().to_string(), source };
        let mut text = serde_json::to_vec_pretty(record).map_err(|error| store_error(std::io::Error::other(error)))?;
        text.push(b'\n');
        crate::files::replace_file(&path, &text).map_err(store_error)
    }

    /// Deletes the app's pin file. A missing file is no error.
    pub fn remove(&self, app: &str) -> Result<(), CatalogError> {
        let path = self.path(app);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(CatalogError::Store { path: path.display().to_string(), source }),
        }
    }
}

fn load(path: &Path) -> Result<PinRecord, CatalogError> {
    let corrupt = |reason: String| CatalogError::Corrupt { path: path.display().to_string(), reason };
    let bytes = std::fs::read(path).map_err(|source| CatalogError::Store { path: path.display().to_string(), source })?;
    let record: PinRecord = serde_json::from_slice(&bytes).map_err(|error| corrupt(error.to_string()))?;
    if record.version != FORMAT_VERSION {
        return Err(corrupt(format!("format version {} is not the supported {FORMAT_VERSION}", record.version)));
    }
    let stem = path.file_stem().and_then(|stem| stem.to_str()).unwrap_or_default();
    if record.app != stem {
        return Err(corrupt(format!("it pins app {:?}, not {stem:?}", record.app)));
    }
    record.pinned.verify().map_err(|reason| corrupt(format!("pinned catalog: {reason}")))?;
    if let Some(quarantine) = &record.quarantine {
        quarantine.offered.verify().map_err(|reason| corrupt(format!("offered catalog: {reason}")))?;
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::pin::PinnedTool;
    use serde_json::json;

    fn catalog(description: &str) -> Catalog {
        let schema = json!({"type": "object", "properties": {"title": {"type": "string"}}});
        Catalog::new(vec![PinnedTool::new("add_note".into(), description.into(), &schema)]).expect("catalog")
    }

    #[test]
    fn save_and_load_round_trip() {
        let state = tempfile::tempdir().expect("temp dir");
        let store = PinStore::open(state.path()).expect("open");
        let mut record = PinRecord::new("notes", catalog("Adds a note."), 1_000);
        record.quarantine =
            Some(Quarantine { since_ms: 2_000, trigger: Trigger::ListChanged, offered: catalog("Adds a note!") });
        store.save(&record).expect("save");
        store.save(&PinRecord::new("mail", catalog("Sends mail."), 3_000)).expect("save");

        let loaded = PinStore::open(state.path()).expect("reopen").load_all().expect("load");
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0].app, "mail");
        assert_eq!(loaded[1], record);
        assert!(!state.path().join(DIR_NAME).join("notes.tmp").exists());
    }

    #[test]
    fn remove_tolerates_missing_file() {
        let state = tempfile::tempdir().expect("temp dir");
        let store = PinStore::open(state.path()).expect("open");
        store.save(&PinRecord::new("notes", catalog("Adds a note."), 1)).expect("save");
        store.remove("notes").expect("remove");
        assert!(store.load_all().expect("load").is_empty());
        store.remove("notes").expect("second remove");
    }

    #[test]
    fn edited_file_is_rejected_with_its_path() {
        let state = tempfile::tempdir().expect("temp dir");
        let store = PinStore::open(state.path()).expect("open");
        store.save(&PinRecord::new("notes", catalog("Adds a note."), 1)).expect("save");
        let path = state.path().join(DIR_NAME).join("notes.json");
        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::write(&path, text.replace("Adds a note.", "Adds a note and mails it out.")).expect("write");

        let error = store.load_all().expect_err("edited");
        let message = error.to_string();
        assert!(message.contains("notes.json"), "{message}");
        assert!(message.contains("does not match"), "{message}");
    }

    #[test]
    fn file_named_after_another_app_is_rejected() {
        let state = tempfile::tempdir().expect("temp dir");
        let store = PinStore::open(state.path()).expect("open");
        store.save(&PinRecord::new("notes", catalog("Adds a note."), 1)).expect("save");
        let dir = state.path().join(DIR_NAME);
        std::fs::rename(dir.join("notes.json"), dir.join("mail.json")).expect("rename");
        let message = store.load_all().expect_err("renamed").to_string();
        assert!(message.contains("pins app \"notes\", not \"mail\""), "{message}");
    }

    #[test]
    fn unparsable_file_is_rejected() {
        let state = tempfile::tempdir().expect("temp dir");
        let store = PinStore::open(state.path()).expect("open");
        std::fs::write(state.path().join(DIR_NAME).join("notes.json"), "{").expect("write");
        assert!(matches!(store.load_all(), Err(CatalogError::Corrupt { .. })));
    }
}
