use std::collections::HashSet;

use super::*;

fn names(table: &[Syscall]) -> Vec<&'static str> {
    table.iter().map(Syscall::name).collect()
}

#[test]
fn syscall_name_strips_prefix() {
    let openat = allowed_syscalls()
        .iter()
        .find(|s| s.number == libc::SYS_openat);
    assert_eq!(openat.map(Syscall::name), Some("openat"));
}

#[test]
fn allowlist_omits_clone3() {
    assert!(!names(allowed_syscalls()).contains(&"clone3"));
    assert!(allowed_syscalls()
        .iter()
        .all(|s| s.number != libc::SYS_clone3));
}

#[test]
fn allowlist_lets_second_filter_install() {
    let allowed = names(allowed_syscalls());
    for needed in ["prctl", "seccomp"] {
        assert!(
            allowed.contains(&needed),
            "{needed} missing from the allowlist"
        );
    }
}

#[test]
fn allowlist_has_exec_and_exit_path() {
    let allowed = names(allowed_syscalls());
    for needed in [
        "execve",
        "exit",
        "exit_group",
        "rt_sigreturn",
        "restart_syscall",
        "write",
    ] {
        assert!(
            allowed.contains(&needed),
            "{needed} missing from the allowlist"
        );
    }
}

#[test]
fn argument_checked_syscalls_are_allowed() {
    let allowed = names(allowed_syscalls());
    for checked in [
        "clone",
        "ioctl",
        "personality",
        "socket",
        "socketpair",
        "setsockopt",
        "sendto",
    ] {
        assert!(
            allowed.contains(&checked),
            "{checked} missing from the allowlist"
        );
    }
}

#[test]
fn tables_have_no_duplicates() {
    for (label, table) in [
        ("allowed", allowed_syscalls()),
        ("denied", denied_syscalls()),
    ] {
        let mut seen = HashSet::new();
        for syscall in table {
            assert!(
                seen.insert(syscall.number),
                "{} listed twice in {label}",
                syscall.name()
            );
        }
    }
}

#[test]
fn allowed_and_denied_are_disjoint() {
    let allowed: HashSet<i64> = allowed_syscalls().iter().map(|s| s.number).collect();
    for syscall in denied_syscalls() {
        assert!(
            !allowed.contains(&syscall.number),
            "{} is both allowed and denied",
            syscall.name()
        );
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn denylist_is_exact_on_x86_64() {
    let mut denied = names(denied_syscalls());
    denied.sort_unstable();
    let mut expected = vec![
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "kcmp",
        "pidfd_getfd",
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "mount",
        "umount2",
        "pivot_root",
        "chroot",
        "move_mount",
        "open_tree",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "mount_setattr",
        "unshare",
        "setns",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "reboot",
        "swapon",
        "swapoff",
        "acct",
        "quotactl",
        "quotactl_fd",
        "syslog",
        "vhangup",
        "nfsservctl",
        "lookup_dcookie",
        "settimeofday",
        "clock_settime",
        "clock_adjtime",
        "adjtimex",
        "open_by_handle_at",
        "name_to_handle_at",
        "iopl",
        "ioperm",
        "uselib",
        "ustat",
        "sysfs",
        "_sysctl",
    ];
    expected.sort_unstable();
    assert_eq!(denied, expected);
}

#[test]
fn denied_clone_flags_cover_every_namespace() {
    let mask: u64 = DENIED_CLONE_FLAGS
        .iter()
        .map(|&(_, flag)| flag)
        .fold(0, |a, b| a | b);
    let expected = (libc::CLONE_NEWNS
        | libc::CLONE_NEWCGROUP
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUSER
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNET) as u64
        | 0x80;
    assert_eq!(mask, expected);
    assert_eq!(DENIED_CLONE_FLAGS.len(), 8);
}

#[test]
fn denied_ioctls_are_tiocsti_and_tioclinux() {
    assert_eq!(DENIED_IOCTLS, &[("TIOCSTI", 0x5412), ("TIOCLINUX", 0x541c)]);
}

#[test]
fn network_families_per_setting() {
    assert_eq!(
        NetworkFamilies::UnixOnly.allowed_families(),
        &[libc::AF_UNIX]
    );
    assert_eq!(
        NetworkFamilies::UnixAndInet.allowed_families(),
        &[libc::AF_UNIX, libc::AF_INET, libc::AF_INET6]
    );
}

#[test]
fn network_families_serde_names() {
    let unix_only = serde_json::to_string(&NetworkFamilies::UnixOnly).expect("serialize");
    assert_eq!(unix_only, "\"unix_only\"");
    let parsed: NetworkFamilies = serde_json::from_str("\"unix_and_inet\"").expect("deserialize");
    assert_eq!(parsed, NetworkFamilies::UnixAndInet);
}

#[test]
fn compile_fits_bpf_limit() {
    // The kernel rejects programs longer than BPF_MAXINSNS (4096) instructions.
    for network in [NetworkFamilies::UnixOnly, NetworkFamilies::UnixAndInet] {
        let filters = SeccompPolicy { network }.compile().expect("compile");
        assert!(
            filters.allowlist.len() < 4096,
            "allowlist has {} instructions",
            filters.allowlist.len()
        );
        assert!(
            filters.denylist.len() < 4096,
            "deny filter has {} instructions",
            filters.denylist.len()
        );
        assert!(filters.denylist.len() > denied_syscalls().len());
    }
}

#[test]
fn network_setting_changes_deny_filter() {
    let unix_only = SeccompPolicy {
        network: NetworkFamilies::UnixOnly,
    }
    .compile()
    .expect("compile");
    let inet = SeccompPolicy {
        network: NetworkFamilies::UnixAndInet,
    }
    .compile()
    .expect("compile");
    assert_eq!(unix_only.allowlist, inet.allowlist);
    assert_ne!(unix_only.denylist, inet.denylist);
}
