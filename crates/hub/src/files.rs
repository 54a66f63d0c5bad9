//! Durable replacement of the hub's state files: the registry, the catalog pins and the grants.

use std::io::Write;
use std::path::Path;

/// Replaces `path` with `bytes` atomically, so a reader or a crash finds the old file or the new
/// one, never a mix. The bytes go to a temporary file with a unique name in the same folder, which
/// is synced, renamed over `path`, and followed by a sync of the folder. The new file has mode
/// 0600, because the state files are the hub's alone.
pub fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let mut temporary = tempfile::Builder::new().prefix(&format!(".{name}-")).tempfile_in(folder)?;
    temporary.write_all(bytes)?;
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|error| error.error)?;
    std::fs::File::open(folder)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn replace_is_private_and_clean() {
        let folder = tempfile::tempdir().expect("temp dir");
        let path = folder.path().join("registry.json");
        std::fs::write(&path, b"old").expect("old file");
        replace_file(&path, b"new").expect("replaced");
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
        let mode = std::fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = std::fs::read_dir(folder.path()).expect("list").map(|entry| entry.expect("entry").file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("registry.json")]);
    }

    #[test]
    fn missing_folder_is_an_error() {
        let folder = tempfile::tempdir().expect("temp dir");
        let path = folder.path().join("absent").join("grants.json");
        assert!(replace_file(&path, b"x").is_err());
    }
}
