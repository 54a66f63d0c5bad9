//! Checks on the absolute paths that manifests and the hub config name.

use std::path::{Component, Path, PathBuf};

/// Parses an absolute path with no `.` or `..` component and no NUL byte.
///
/// Repeated and trailing slashes are dropped, so "/opt//app/" becomes "/opt/app". The error is a
/// reason for a message that names the key.
pub(crate) fn absolute_normalized(value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err("is empty; use an absolute path such as \"/opt/app\"".to_owned());
    }
    if value.contains('\0') {
        return Err(format!("{value:?} contains a NUL byte"));
    }
    if !value.starts_with('/') {
        return Err(format!(
            "\"{value}\" is not an absolute path; start it with /"
        ));
    }
    if let Some(dots) = value.split('/').find(|part| *part == "." || *part == "..") {
        return Err(format!(
            "\"{value}\" contains a \"{dots}\" component; write the path without . and .."
        ));
    }
    Ok(Path::new(value).components().collect())
}

/// Returns the first of `roots` that `path` equals or lies beneath, comparing whole components
/// so that "/procfs" is not under "/proc".
pub(crate) fn under_any<'a>(path: &Path, roots: &[&'a str]) -> Option<&'a str> {
    roots.iter().copied().find(|root| path.starts_with(root))
}

/// Returns true when the path is the root folder itself.
pub(crate) fn is_root(path: &Path) -> bool {
    path.components()
        .all(|component| component == Component::RootDir)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn absolute_normalized_accepts_and_cleans() {
        assert_eq!(
            absolute_normalized("/opt/app"),
            Ok(PathBuf::from("/opt/app"))
        );
        assert_eq!(
            absolute_normalized("/opt//app/"),
            Ok(PathBuf::from("/opt/app"))
        );
        assert_eq!(absolute_normalized("/"), Ok(PathBuf::from("/")));
        assert_eq!(
            absolute_normalized("/a/..b/c."),
            Ok(PathBuf::from("/a/..b/c."))
        );
    }

    #[test]
    fn absolute_normalized_rejects() {
        for value in [
            "",
            "opt/app",
            "./x",
            "/opt/../etc",
            "/opt/./app",
            "/opt/app/.",
            "/a\0b",
        ] {
            assert!(absolute_normalized(value).is_err(), "accepted {value:?}");
        }
    }

    #[test]
    fn absolute_normalized_message_names_component() {
        assert_eq!(
            absolute_normalized("/opt/../etc").unwrap_err(),
            "\"/opt/../etc\" contains a \"..\" component; write the path without . and .."
        );
    }

    #[test]
    fn under_any_compares_components() {
        let roots = ["/proc", "/dev"];
        assert_eq!(under_any(Path::new("/proc"), &roots), Some("/proc"));
        assert_eq!(
            under_any(Path::new("/proc/self/cwd"), &roots),
            Some("/proc")
        );
        assert_eq!(under_any(Path::new("/dev/shm"), &roots), Some("/dev"));
        assert_eq!(under_any(Path::new("/procfs"), &roots), None);
        assert_eq!(under_any(Path::new("/opt/proc"), &roots), None);
    }

    #[test]
    fn is_root_only_for_slash() {
        assert!(is_root(Path::new("/")));
        assert!(!is_root(Path::new("/opt")));
    }
}
