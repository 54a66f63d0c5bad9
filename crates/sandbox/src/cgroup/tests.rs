use std::path::PathBuf;

use super::*;

fn mounted(version: Version, own_dir: &str, controllers: &[&str]) -> MountedHierarchy {
    MountedHierarchy {
        version,
        mount_point: PathBuf::from("/sys/fs/cgroup"),
        own_dir: PathBuf::from(own_dir),
        controllers: controllers.iter().map(|c| c.to_string()).collect(),
    }
}

/// Builds the layout of a host with cgroup v1 controllers and an almost empty cgroup2 mount.
fn hybrid() -> Hierarchy {
    Hierarchy {
        unified: Some(mounted(Version::V2, "/sys/fs/cgroup/unified", &["hugetlb"])),
        legacy: vec![
            mounted(
                Version::V1,
                "/sys/fs/cgroup/memory/process_api/176b",
                &["memory"],
            ),
            mounted(Version::V1, "/sys/fs/cgroup/pids", &["pids"]),
            mounted(
                Version::V1,
                "/sys/fs/cgroup/cpu,cpuacct",
                &["cpu", "cpuacct"],
            ),
        ],
    }
}

fn pure_v2(controllers: &[&str]) -> Hierarchy {
    Hierarchy {
        unified: Some(mounted(
            Version::V2,
            "/sys/fs/cgroup/system.slice/bulkhead.service",
            controllers,
        )),
        legacy: Vec::new(),
    }
}

fn all_limits() -> Limits {
    Limits {
        memory_bytes: Some(64 << 20),
        pids: Some(64),
        cpu_millis: Some(500),
    }
}

#[test]
fn placement_prefers_v2() {
    let mut hierarchy = hybrid();
    hierarchy.unified = Some(mounted(Version::V2, "/sys/fs/cgroup/unified", &["pids"]));
    let pids = hierarchy.placement(Controller::Pids).expect("pids placed");
    assert_eq!(pids.version, Version::V2);
    let memory = hierarchy
        .placement(Controller::Memory)
        .expect("memory placed");
    assert_eq!(memory.version, Version::V1);
}

#[test]
fn plan_hybrid_uses_v1_dirs() {
    let planned = plan(&hybrid(), &all_limits(), "notes-1").expect("plan");
    let summary: Vec<(Version, &str, Vec<Controller>)> = planned
        .iter()
        .map(|dir| {
            (
                dir.version,
                dir.base.to_str().expect("utf-8"),
                dir.controllers.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                Version::V1,
                "/sys/fs/cgroup/memory/process_api/176b",
                vec![Controller::Memory]
            ),
            (Version::V1, "/sys/fs/cgroup/pids", vec![Controller::Pids]),
            (
                Version::V1,
                "/sys/fs/cgroup/cpu,cpuacct",
                vec![Controller::Cpu]
            ),
        ]
    );
}

#[test]
fn plan_pure_v2_uses_one_dir() {
    let planned = plan(
        &pure_v2(&["cpu", "io", "memory", "pids"]),
        &all_limits(),
        "notes-1",
    )
    .expect("plan");
    assert_eq!(planned.len(), 1);
    assert_eq!(planned[0].version, Version::V2);
    assert_eq!(planned[0].controllers, Controller::ALL.to_vec());
}

#[test]
fn plan_places_controllers_without_limits() {
    let planned = plan(&pure_v2(&["memory", "pids"]), &Limits::default(), "notes-1").expect("plan");
    assert_eq!(
        planned[0].controllers,
        vec![Controller::Memory, Controller::Pids]
    );
}

#[test]
fn plan_fails_for_missing_limited_controller() {
    let limits = Limits {
        cpu_millis: Some(500),
        ..Limits::default()
    };
    let error = plan(&pure_v2(&["memory", "pids"]), &limits, "notes-1").expect_err("cpu missing");
    let message = error.to_string();
    assert!(
        matches!(
            error,
            CgroupError::ControllerUnavailable {
                controller: "cpu",
                ..
            }
        ),
        "{message}"
    );
    assert!(
        message.contains("/sys/fs/cgroup/system.slice/bulkhead.service/cgroup.controllers"),
        "{message}"
    );
    assert!(message.contains("[memory pids]"), "{message}");
    assert!(message.contains("Delegate=yes"), "{message}");
}

#[test]
fn plan_without_controllers_falls_back_to_v2_dir() {
    let planned = plan(&pure_v2(&[]), &Limits::default(), "notes-1").expect("plan");
    assert_eq!(planned.len(), 1);
    assert!(planned[0].controllers.is_empty());
}

#[test]
fn plan_without_any_hierarchy_fails() {
    let error =
        plan(&Hierarchy::default(), &Limits::default(), "notes-1").expect_err("nothing mounted");
    assert!(matches!(error, CgroupError::NoHierarchy { .. }), "{error}");
}

#[test]
fn names_that_are_one_component() {
    for name in ["notes-3f2a91c0", "a", "calendar_2.v1"] {
        assert!(validate_name(name).is_ok(), "{name}");
    }
    let too_long = "x".repeat(65);
    for name in [
        "",
        ".",
        "..",
        "a/b",
        "../x",
        "spaced name",
        "ü",
        too_long.as_str(),
    ] {
        assert!(validate_name(name).is_err(), "{name:?}");
    }
}

#[test]
fn limits_validation() {
    assert!(all_limits().validate().is_ok());
    assert!(Limits::default().validate().is_ok());
    let small_memory = Limits {
        memory_bytes: Some(4096),
        ..Limits::default()
    };
    assert!(matches!(
        small_memory.validate(),
        Err(CgroupError::InvalidLimit {
            limit: "memory",
            value: 4096,
            ..
        })
    ));
    let zero_pids = Limits {
        pids: Some(0),
        ..Limits::default()
    };
    assert!(matches!(
        zero_pids.validate(),
        Err(CgroupError::InvalidLimit { limit: "pids", .. })
    ));
    let tiny_cpu = Limits {
        cpu_millis: Some(9),
        ..Limits::default()
    };
    assert!(matches!(
        tiny_cpu.validate(),
        Err(CgroupError::InvalidLimit {
            limit: "cpu",
            value: 9,
            ..
        })
    ));
    let least_cpu = Limits {
        cpu_millis: Some(MIN_CPU_MILLIS),
        ..Limits::default()
    };
    assert!(least_cpu.validate().is_ok());
}

#[test]
fn limits_serde_round_trip() {
    let text = serde_json::to_string(&all_limits()).expect("serialize");
    let parsed: Limits = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(parsed, all_limits());
}
