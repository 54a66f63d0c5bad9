use std::path::{Path, PathBuf};

use super::prepare::{open_source, relative_components};
use super::*;

fn empty_plan() -> MountPlan {
    MountPlan {
        binds: Vec::new(),
        symlinks: Vec::new(),
        state_dir: None,
        tmp_size_bytes: DEFAULT_TMP_SIZE_BYTES,
    }
}

fn bind(source: &str, target: &str) -> Bind {
    Bind {
        source: PathBuf::from(source),
        target: PathBuf::from(target),
        writable: false,
        optional: false,
    }
}

fn symlink(path: &str, target: &str) -> Symlink {
    Symlink {
        path: PathBuf::from(path),
        target: PathBuf::from(target),
    }
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("bulkhead-mounts-test-")
        .tempdir()
        .expect("create temp dir")
}

/// Creates a temporary directory outside /tmp, so its paths are valid bind targets. Targets under
/// /tmp are rejected.
fn temp_dir_outside_tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("bulkhead-mounts-test-")
        .tempdir_in("/var/tmp")
        .expect("create temp dir in /var/tmp")
}

#[test]
fn add_bind_rejects_relative_paths() {
    let mut plan = empty_plan();
    let err = plan
        .add_bind(bind("opt/app", "/opt/app"))
        .expect_err("relative source");
    assert!(
        matches!(
            err,
            MountError::NotAbsolute {
                role: "mount source",
                ..
            }
        ),
        "{err}"
    );
    let err = plan
        .add_bind(bind("/opt/app", "opt/app"))
        .expect_err("relative target");
    assert!(
        matches!(err, MountError::NotAbsolute { role: "target", .. }),
        "{err}"
    );
}

#[test]
fn add_bind_rejects_dot_components() {
    let mut plan = empty_plan();
    for (source, target) in [
        ("/opt/../etc", "/opt/app"),
        ("/opt/./app", "/opt/app"),
        ("/opt/app", "/opt/app/.."),
        ("/opt/app", "/opt/./app"),
    ] {
        let err = plan
            .add_bind(bind(source, target))
            .expect_err("dot component");
        assert!(
            matches!(err, MountError::NotNormalized { .. }),
            "{source} {target}: {err}"
        );
    }
}

#[test]
fn add_bind_rejects_nul_byte() {
    let mut plan = empty_plan();
    let err = plan
        .add_bind(bind("/opt/a\0b", "/opt/app"))
        .expect_err("NUL in source");
    assert!(matches!(err, MountError::NulByte { .. }), "{err}");
}

#[test]
fn add_bind_rejects_root_target() {
    let mut plan = empty_plan();
    let err = plan
        .add_bind(bind("/opt/app", "/"))
        .expect_err("root target");
    assert!(matches!(err, MountError::RootTarget { .. }), "{err}");
}

#[test]
fn add_bind_rejects_reserved_targets() {
    let mut plan = empty_plan();
    for target in [
        "/proc",
        "/proc/1/root",
        "/dev",
        "/dev/sda",
        "/sys",
        "/sys/fs/cgroup",
    ] {
        let err = plan
            .add_bind(bind("/opt/app", target))
            .expect_err("reserved target");
        assert!(
            matches!(err, MountError::ReservedTarget { .. }),
            "{target}: {err}"
        );
    }
}

#[test]
fn add_bind_allows_reserved_name_prefix() {
    let mut plan = empty_plan();
    plan.add_bind(bind("/opt/app", "/devices"))
        .expect("/devices is not under /dev");
    plan.add_bind(bind("/opt/app", "/processes"))
        .expect("/processes is not under /proc");
}

#[test]
fn add_bind_rejects_generated_targets() {
    let mut plan = empty_plan();
    for target in [
        "/tmp",
        "/tmp/x",
        "/state",
        "/state/data",
        "/etc",
        "/etc/passwd",
        "/etc/group",
        "/etc/hosts",
        "/etc/nsswitch.conf",
    ] {
        let err = plan
            .add_bind(bind("/opt/app", target))
            .expect_err("generated target");
        assert!(
            matches!(err, MountError::GeneratedTarget { .. }),
            "{target}: {err}"
        );
    }
}

#[test]
fn add_bind_allows_other_etc_paths() {
    let mut plan = empty_plan();
    plan.add_bind(bind("/etc/ssl", "/etc/ssl"))
        .expect("/etc/ssl is allowed");
    plan.add_bind(bind("/etc/ld.so.cache", "/etc/ld.so.cache"))
        .expect("file under /etc");
}

#[test]
fn add_bind_rejects_duplicate_target() {
    let mut plan = empty_plan();
    plan.add_bind(bind("/opt/a", "/opt/app"))
        .expect("first bind");
    let err = plan
        .add_bind(bind("/opt/b", "/opt/app/"))
        .expect_err("same target");
    assert!(matches!(err, MountError::DuplicateTarget { .. }), "{err}");
}

#[test]
fn add_bind_rejects_target_under_symlink() {
    let mut plan = empty_plan();
    plan.add_symlink(symlink("/lib", "usr/lib"))
        .expect("symlink");
    for target in ["/lib", "/lib/x86_64-linux-gnu"] {
        let err = plan
            .add_bind(bind("/usr/lib", target))
            .expect_err("under symlink");
        assert!(
            matches!(
                &err,
                MountError::DuplicateTarget { .. } | MountError::TargetUnderSymlink { .. }
            ),
            "{target}: {err}"
        );
    }
    let err = plan
        .add_bind(bind("/usr/lib", "/lib/foo"))
        .expect_err("under symlink");
    match err {
        MountError::TargetUnderSymlink { path, symlink } => {
            assert_eq!(path, Path::new("/lib/foo"));
            assert_eq!(symlink, Path::new("/lib"));
        }
        other => panic!("expected TargetUnderSymlink, got {other}"),
    }
}

#[test]
fn add_bind_rejects_target_above_symlink() {
    let mut plan = empty_plan();
    plan.add_symlink(symlink("/opt/app/current", "v2"))
        .expect("symlink");
    let err = plan
        .add_bind(bind("/srv/app", "/opt/app"))
        .expect_err("would hide symlink");
    assert!(matches!(err, MountError::SymlinkUnderBind { .. }), "{err}");
}

#[test]
fn add_symlink_rejects_path_under_bind() {
    let mut plan = empty_plan();
    plan.add_bind(bind("/usr", "/usr")).expect("bind");
    let err = plan
        .add_symlink(symlink("/usr/lib64", "lib"))
        .expect_err("under bind");
    assert!(matches!(err, MountError::SymlinkUnderBind { .. }), "{err}");
}

#[test]
fn add_symlink_rejects_path_above_bind() {
    let mut plan = empty_plan();
    plan.add_bind(bind("/usr/lib", "/lib/modules"))
        .expect("bind");
    let err = plan
        .add_symlink(symlink("/lib", "usr/lib"))
        .expect_err("bind under symlink");
    assert!(
        matches!(err, MountError::TargetUnderSymlink { .. }),
        "{err}"
    );
}

#[test]
fn add_symlink_rejects_nul_in_link_text() {
    let mut plan = empty_plan();
    let err = plan
        .add_symlink(symlink("/lib", "usr\0lib"))
        .expect_err("NUL in link text");
    assert!(
        matches!(
            err,
            MountError::NulByte {
                role: "symlink target",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn binds_sorted_parents_first() {
    let mut plan = empty_plan();
    for target in [
        "/opt/app/data",
        "/usr",
        "/opt/app",
        "/opt/app/data/cache",
        "/app/bin/x",
    ] {
        plan.add_bind(bind("/srv", target)).expect("valid bind");
    }
    let targets: Vec<&Path> = plan.binds.iter().map(|b| b.target.as_path()).collect();
    assert_eq!(
        targets,
        [
            "/app/bin/x",
            "/opt/app",
            "/opt/app/data",
            "/opt/app/data/cache",
            "/usr"
        ]
        .map(Path::new)
    );
    for (i, later) in plan.binds.iter().enumerate() {
        for earlier in &plan.binds[i + 1..] {
            assert!(
                !later.target.starts_with(&earlier.target),
                "child before parent"
            );
        }
    }
}

#[test]
fn sorted_binds_orders_an_unsorted_plan() {
    let mut plan = empty_plan();
    plan.binds = vec![bind("/srv", "/opt/app/data"), bind("/srv", "/opt/app")];
    let targets: Vec<&Path> = plan
        .sorted_binds()
        .iter()
        .map(|b| b.target.as_path())
        .collect();
    assert_eq!(targets, ["/opt/app", "/opt/app/data"].map(Path::new));
}

#[test]
fn validate_rejects_plan_built_by_hand() {
    let mut plan = empty_plan();
    plan.symlinks = vec![symlink("/lib", "usr/lib")];
    plan.binds = vec![bind("/usr/lib/x", "/lib/x")];
    let err = plan.validate().expect_err("bind under symlink");
    assert!(
        matches!(err, MountError::TargetUnderSymlink { .. }),
        "{err}"
    );

    let mut plan = empty_plan();
    plan.tmp_size_bytes = 0;
    let err = plan.validate().expect_err("zero tmp size");
    assert!(matches!(err, MountError::ZeroTmpSize), "{err}");

    let mut plan = empty_plan();
    plan.state_dir = Some(PathBuf::from("state"));
    let err = plan.validate().expect_err("relative state dir");
    assert!(matches!(err, MountError::NotAbsolute { .. }), "{err}");
}

#[test]
fn with_system_paths_binds_dirs_and_keeps_symlinks() {
    let dir = temp_dir_outside_tmp();
    let usr = dir.path().join("usr");
    std::fs::create_dir_all(usr.join("lib")).expect("create usr/lib");
    let lib = dir.path().join("lib");
    std::os::unix::fs::symlink("usr/lib", &lib).expect("create lib symlink");
    let missing = dir.path().join("lib64");

    let plan =
        MountPlan::with_system_paths(&[usr.clone(), lib.clone(), missing]).expect("system plan");

    assert_eq!(
        plan.binds,
        vec![Bind {
            source: usr.clone(),
            target: usr,
            writable: false,
            optional: true,
        }]
    );
    assert_eq!(
        plan.symlinks,
        vec![Symlink {
            path: lib,
            target: PathBuf::from("usr/lib"),
        }]
    );
    assert_eq!(plan.state_dir, None);
    assert_eq!(plan.tmp_size_bytes, DEFAULT_TMP_SIZE_BYTES);
}

#[test]
fn with_system_paths_rejects_path_under_symlink() {
    let dir = temp_dir_outside_tmp();
    std::fs::create_dir_all(dir.path().join("usr/lib/x")).expect("create usr/lib/x");
    std::os::unix::fs::symlink("usr/lib", dir.path().join("lib")).expect("create lib symlink");
    let err = MountPlan::with_system_paths(&[dir.path().join("lib/x")]).expect_err("under symlink");
    match err {
        MountError::SystemPathUnderSymlink { symlink, .. } => {
            assert_eq!(symlink, dir.path().join("lib"))
        }
        other => panic!("expected SystemPathUnderSymlink, got {other}"),
    }
}

#[test]
fn open_source_rejects_symlink_component() {
    let dir = temp_dir();
    std::fs::create_dir_all(dir.path().join("real/data")).expect("create real/data");
    std::os::unix::fs::symlink("real", dir.path().join("link")).expect("create symlink");

    let err = open_source(&dir.path().join("link/data"), false).expect_err("symlink in path");
    match &err {
        MountError::SourceSymlink { symlink, .. } => assert_eq!(symlink, &dir.path().join("link")),
        other => panic!("expected SourceSymlink, got {other}"),
    }
    assert!(err.to_string().contains("contains a symlink at"), "{err}");

    let err = open_source(&dir.path().join("link"), true).expect_err("symlink even when optional");
    assert!(matches!(err, MountError::SourceSymlink { .. }), "{err}");

    open_source(&dir.path().join("real/data"), false)
        .expect("resolved path opens")
        .expect("present source gives a descriptor");
}

#[test]
fn open_source_missing_required_or_optional() {
    let dir = temp_dir();
    let missing = dir.path().join("missing");
    let err = open_source(&missing, false).expect_err("missing required source");
    assert!(matches!(err, MountError::SourceMissing { .. }), "{err}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
    let skipped = open_source(&missing, true).expect("missing optional source");
    assert!(skipped.is_none());
}

#[test]
fn relative_components_drop_root() {
    let components = relative_components(Path::new("/etc/ssl/certs"));
    let names: Vec<&[u8]> = components.iter().map(|c| c.as_bytes()).collect();
    assert_eq!(names, [&b"etc"[..], b"ssl", b"certs"]);
}

#[test]
fn plan_round_trips_through_json() {
    let mut plan = empty_plan();
    plan.add_symlink(symlink("/lib", "usr/lib"))
        .expect("symlink");
    plan.add_bind(bind("/usr", "/usr")).expect("bind");
    plan.state_dir = Some(PathBuf::from("/var/lib/bulkhead/state/notes"));
    let text = serde_json::to_string(&plan).expect("serialize");
    let back: MountPlan = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(back, plan);
}
