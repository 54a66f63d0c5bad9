//! Privileged tests of the spoke launcher.
//!
//! This binary has its own `main` (harness = false): the launcher refuses to run multi-threaded,
//! so each case starts the test binary again in [`LAUNCHER_MODE`] with the hub's stdio and fd 3
//! layout, and that subprocess runs the launcher with /bin/sh as the runtime. The cases need root
//! and are skipped with a message otherwise. Pass a substring to run only matching cases.

mod launch_support;

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use bulkhead_sandbox::fds;
use bulkhead_sandbox::launch::{self, ExecTarget, LaunchSpec, CHANNEL_FD, SETUP_FAILURE_EXIT_CODE};
use bulkhead_sandbox::mounts::Bind;
use launch_support::*;

const CASES: &[(&str, fn())] = &[
    (
        "runtime_identity_and_namespaces",
        runtime_identity_and_namespaces,
    ),
    (
        "runtime_descriptors_and_session",
        runtime_descriptors_and_session,
    ),
    ("filesystem_layout", filesystem_layout),
    ("mount_flags", mount_flags),
    ("write_permissions", write_permissions),
    ("loopback_is_up", loopback_is_up),
    ("symlinked_source_rejected", symlinked_source_rejected),
    (
        "missing_required_source_rejected",
        missing_required_source_rejected,
    ),
    (
        "missing_optional_source_skipped",
        missing_optional_source_skipped,
    ),
    ("root_host_uid_rejected", root_host_uid_rejected),
    ("unavailable_namespace_named", unavailable_namespace_named),
    ("missing_channel_rejected", missing_channel_rejected),
    ("exit_code_propagates", exit_code_propagates),
    ("sigterm_forwarded", sigterm_forwarded),
    (
        "killed_runtime_reports_signal",
        killed_runtime_reports_signal,
    ),
    ("launcher_death_kills_runtime", launcher_death_kills_runtime),
    ("cgroup_procs_joined", cgroup_procs_joined),
    ("current_exe_runs_inside", current_exe_runs_inside),
    ("close_fds_with_close_range", close_fds_with_close_range),
    ("close_fds_by_walk", close_fds_by_walk),
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some(LAUNCHER_MODE) => {
            let shell = PathBuf::from(args.get(2).expect("shell path argument"));
            std::process::exit(run_as_launcher(shell));
        }
        Some("__launcher-current-exe") => std::process::exit(launch::run_launcher_from_stdin()),
        Some("__launcher-without-netns") => {
            deny_network_namespaces();
            let shell = PathBuf::from(args.get(2).expect("shell path argument"));
            std::process::exit(run_as_launcher(shell));
        }
        Some(INSIDE_MODE) => std::process::exit(run_inside()),
        Some(CLOSE_FDS_MODE) => std::process::exit(run_close_fds(&args[2])),
        _ => {}
    }

    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!(
            "skipping launch tests: they need root to create namespaces and map uid {HOST_ID}"
        );
        return;
    }
    let filter = args.iter().skip(1).find(|arg| !arg.starts_with('-'));
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, case) in CASES {
        if filter.is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        match std::panic::catch_unwind(case) {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    println!("\n{} passed; {} failed", ran - failed.len(), failed.len());
    if !failed.is_empty() {
        println!("failed: {failed:?}");
        std::process::exit(1);
    }
}

fn run_as_launcher(shell: PathBuf) -> i32 {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .expect("read spec");
    let spec: LaunchSpec = serde_json::from_str(&text).expect("parse spec");
    launch::launch_with_exec(&spec, &ExecTarget::Path(shell))
}

/// Makes every clone that requests a new network namespace fail with EPERM, as a host without
/// network namespaces would.
fn deny_network_namespaces() {
    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule,
    };
    let flag = u64::try_from(libc::CLONE_NEWNET).expect("flag is positive");
    let condition = SeccompCondition::new(
        0,
        SeccompCmpArgLen::Qword,
        SeccompCmpOp::MaskedEq(flag),
        flag,
    )
    .expect("condition");
    let rules = [(
        libc::SYS_clone,
        vec![SeccompRule::new(vec![condition]).expect("rule")],
    )];
    let filter = SeccompFilter::new(
        rules.into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(u32::try_from(libc::EPERM).expect("errno")),
        std::env::consts::ARCH
            .try_into()
            .expect("supported architecture"),
    )
    .expect("filter");
    let program: BpfProgram = filter.try_into().expect("compile filter");
    bulkhead_sandbox::privileges::set_no_new_privs().expect("set no_new_privs");
    seccompiler::apply_filter(&program).expect("apply filter");
}

/// Runs inside the sandbox as the runtime when the launcher executes its own binary.
fn run_inside() -> i32 {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    // SAFETY: the launcher passes the channel as fd 3, and nothing else in this process uses it.
    let mut channel = unsafe { std::fs::File::from_raw_fd(CHANNEL_FD) };
    // SAFETY: getuid and getpid have no preconditions.
    let (uid, pid) = unsafe { (libc::getuid(), libc::getpid()) };
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let line = format!("inside uid={uid} pid={pid} hostname={}\n", hostname.trim());
    channel.write_all(line.as_bytes()).map_or(1, |()| 0)
}

fn spec_with_shell(script: &str) -> (Fixture, LaunchSpec) {
    let fixture = Fixture::new();
    let spec = fixture.spec(script);
    (fixture, spec)
}

fn runtime_identity_and_namespaces() {
    let (_fixture, spec) = spec_with_shell("id -u; id -g; cat /proc/sys/kernel/hostname");
    let mut started = start(&spec);
    let pid = started.runtime_pid();
    let output = started.output_until_ready();
    assert_eq!(output, ["0", "0", "bulkhead-launch-test"]);

    let status = proc_status(pid);
    let host_id = HOST_ID.to_string();
    let ids = [host_id.as_str(); 4].join("\t");
    assert_eq!(status_field(&status, "Uid"), ids);
    assert_eq!(status_field(&status, "Gid"), ids);
    assert_eq!(status_field(&status, "Groups"), "");
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status_field(&status, set), "0000000000000000", "{set}");
    }
    assert_eq!(status_field(&status, "NoNewPrivs"), "1");
    assert_eq!(
        status_field(&status, "NSpid").split('\t').next_back(),
        Some("1")
    );

    for namespace in ["user", "mnt", "pid", "net", "ipc", "uts", "cgroup"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{namespace}")).expect("host ns");
        let spoke = std::fs::read_link(format!("/proc/{pid}/ns/{namespace}")).expect("spoke ns");
        assert_ne!(host, spoke, "{namespace} namespace is shared with the host");
    }

    let finished = started.finish();
    assert_eq!(finished.exit_code, 0);
    assert_eq!(
        finished.stdout_rest, "",
        "launcher wrote more than one stdout line"
    );
}

fn runtime_descriptors_and_session() {
    // No redirection in the shell itself, so its descriptors stay as the launcher left them.
    let (_fixture, mut spec) = spec_with_shell("unused");
    let script = "echo ready >&3; exec sleep 30";
    spec.runtime_args = vec!["sh".to_string(), "-c".to_string(), script.to_string()];
    let mut started = start(&spec);
    let pid = started.runtime_pid();
    started.output_until_ready();
    // "ready" comes before the exec, while the shell may still hold a saved descriptor.
    let deadline = std::time::Instant::now() + TIMEOUT;
    while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "runtime never executed sleep"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list runtime fds")
        .map(|entry| {
            entry
                .expect("fd entry")
                .file_name()
                .to_string_lossy()
                .parse()
                .expect("fd")
        })
        .collect();
    fds.sort_unstable();
    assert_eq!(
        fds,
        [0, 1, 2, 3],
        "runtime must hold only stdio and the channel"
    );
    for fd in [0, 1] {
        let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).expect("read fd link");
        assert_eq!(target, PathBuf::from("/dev/null"), "fd {fd}");
    }
    let channel = std::fs::read_link(format!("/proc/{pid}/fd/3")).expect("read fd 3");
    assert!(
        channel.to_string_lossy().starts_with("socket:"),
        "fd 3 is {channel:?}"
    );

    // SAFETY: getsid takes an integer argument only.
    let session = unsafe { libc::getsid(pid) };
    assert_eq!(session, pid, "runtime must lead its own session");

    // SAFETY: kill takes integer arguments only.
    assert_eq!(
        unsafe { libc::kill(pid, libc::SIGKILL) },
        0,
        "kill the runtime"
    );
    assert_eq!(started.wait_launcher(), 128 + libc::SIGKILL);
}

fn filesystem_layout() {
    let script = r#"
set -- /proc/[0-9]*; echo "procs=$*"
echo "dev=$(ls -A /dev | tr '\n' ' ')"
echo "dev_fd=$(readlink /dev/fd)"
if test -e /sys; then echo sys=present; else echo sys=absent; fi
if test -e /etc/resolv.conf; then echo resolv=present; else echo resolv=absent; fi
echo "root=$(ls -A / | tr '\n' ' ')"
echo "passwd=$(cat /etc/passwd)"
echo "group=$(cat /etc/group)"
echo "hosts=$(cat /etc/hosts | tr '\n' '|')"
echo "nsswitch=$(cat /etc/nsswitch.conf | tr '\n' '|')"
echo "lib=$(readlink /lib)"
echo "data=$(cat /data/hello)"
echo "tmp_mode=$(stat -c %a /tmp)"
echo "cwd=$(pwd)"
echo "stdin=$(readlink /proc/self/fd/0)"
"#;
    let (_fixture, spec) = spec_with_shell(script);
    let mut started = start(&spec);
    let output = started.output_until_ready();
    let expected = [
        "procs=/proc/1",
        "dev=fd full null random stderr stdin stdout urandom zero ",
        "dev_fd=/proc/self/fd",
        "sys=absent",
        "resolv=absent",
        "root=bin data dev etc lib lib64 proc sbin state tmp usr ",
        "passwd=root:x:0:0:bulkhead app:/state:/bin/sh",
        "group=root:x:0:",
        "hosts=127.0.0.1 localhost|::1 localhost ip6-localhost|",
        "nsswitch=passwd: files|group: files|hosts: files|",
        "lib=usr/lib",
        "data=hello from the host",
        "tmp_mode=1777",
        "cwd=/",
        "stdin=/dev/null",
    ];
    for line in expected {
        assert!(
            output.iter().any(|l| l == line),
            "missing {line:?} in {output:#?}"
        );
    }
    assert_eq!(started.finish().exit_code, 0);
}

/// Returns the per-mount options of the mount at `mount_point` in a mountinfo listing.
fn mount_options<'a>(mountinfo: &'a [String], mount_point: &str) -> Vec<&'a str> {
    let line = mountinfo
        .iter()
        .rfind(|line| line.split(' ').nth(4) == Some(mount_point))
        .unwrap_or_else(|| panic!("no mount at {mount_point} in {mountinfo:#?}"));
    line.split(' ')
        .nth(5)
        .expect("options field")
        .split(',')
        .collect()
}

fn mount_flags() {
    let (_fixture, spec) = spec_with_shell("cat /proc/self/mountinfo");
    let mut started = start(&spec);
    let mountinfo = started.output_until_ready();
    let expectations: [(&str, &[&str]); 9] = [
        ("/", &["ro", "nosuid", "nodev"]),
        ("/usr", &["ro", "nosuid", "nodev"]),
        ("/data", &["ro", "nosuid", "nodev"]),
        ("/state", &["rw", "nosuid", "nodev"]),
        ("/tmp", &["rw", "nosuid", "nodev"]),
        ("/proc", &["rw", "nosuid", "nodev", "noexec"]),
        ("/dev", &["ro", "nosuid", "nodev", "noexec"]),
        ("/dev/null", &["rw", "nosuid", "noexec"]),
        ("/dev/urandom", &["rw", "nosuid", "noexec"]),
    ];
    for (mount_point, flags) in expectations {
        let options = mount_options(&mountinfo, mount_point);
        for flag in flags {
            assert!(
                options.contains(flag),
                "{mount_point} lacks {flag}: {options:?}"
            );
        }
    }
    let null_options = mount_options(&mountinfo, "/dev/null");
    assert!(
        !null_options.contains(&"nodev"),
        "/dev/null must allow device access"
    );
    assert!(
        !mountinfo
            .iter()
            .any(|line| line.contains(" - proc ") && line.split(' ').nth(4) != Some("/proc")),
        "a procfs is mounted outside /proc: {mountinfo:#?}"
    );
    assert_eq!(started.finish().exit_code, 0);
}

fn write_permissions() {
    let script = r#"
touch /data/new 2>&1
touch /usr/new 2>&1
mkdir /newdir 2>&1
touch /dev/new 2>&1
echo x > /dev/null && echo devnull=ok
echo state > /state/written && echo state=ok
echo tmp > /tmp/written && echo tmp=ok
"#;
    let (fixture, spec) = spec_with_shell(script);
    let mut started = start(&spec);
    let output = started.output_until_ready();
    for path in ["/data/new", "/usr/new", "/dev/new"] {
        let expected = format!("touch: cannot touch '{path}': Read-only file system");
        assert!(
            output.contains(&expected),
            "missing {expected:?} in {output:#?}"
        );
    }
    let expected = "mkdir: cannot create directory '/newdir': Read-only file system";
    assert!(
        output.iter().any(|l| l == expected),
        "missing {expected:?} in {output:#?}"
    );
    for line in ["devnull=ok", "state=ok", "tmp=ok"] {
        assert!(
            output.iter().any(|l| l == line),
            "missing {line:?} in {output:#?}"
        );
    }
    assert_eq!(started.finish().exit_code, 0);

    let written = fixture.state.join("written");
    let metadata = std::fs::metadata(&written).expect("state file exists on the host");
    assert_eq!(metadata.uid(), HOST_ID, "state file owner on the host");
    assert_eq!(
        std::fs::read_to_string(&written).expect("read state file"),
        "state\n"
    );
    assert!(
        !fixture.data.join("new").exists(),
        "read-only bind was written"
    );
}

fn loopback_is_up() {
    // perl-base, an essential Debian package, carries IO::Socket::INET.
    let script = r#"
grep -q '^[0-9]*[[:space:]]*lo ' /proc/net/igmp && echo igmp=lo
perl -MIO::Socket::INET -e '
  my $l = IO::Socket::INET->new(LocalAddr => "127.0.0.1", Listen => 1) or die "listen: $!";
  my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $l->sockport) or die "connect: $!";
  print "loopback=ok\n";' 2>&1
"#;
    let (_fixture, spec) = spec_with_shell(script);
    let mut started = start(&spec);
    let output = started.output_until_ready();
    assert!(
        output.iter().any(|l| l == "igmp=lo"),
        "lo is not up: {output:#?}"
    );
    assert!(
        output.iter().any(|l| l == "loopback=ok"),
        "no loopback connection: {output:#?}"
    );
    assert_eq!(started.finish().exit_code, 0);
}

fn assert_setup_failed(started: Started) -> String {
    let message = started.error_message();
    let finished = started.finish();
    assert_eq!(finished.exit_code, SETUP_FAILURE_EXIT_CODE);
    assert_eq!(finished.stdout_rest, "");
    message
}

fn symlinked_source_rejected() {
    let fixture = Fixture::new();
    let real = fixture.dir.path().join("real");
    std::fs::create_dir(&real).expect("create real dir");
    let link = fixture.dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).expect("create symlink");
    let mut spec = fixture.spec("true");
    spec.mounts
        .add_bind(Bind {
            source: link.join("."),
            target: PathBuf::from("/opt/app"),
            writable: false,
            optional: false,
        })
        .expect_err("dot component is rejected at once");
    spec.mounts
        .add_bind(Bind {
            source: link.clone(),
            target: PathBuf::from("/opt/app"),
            writable: false,
            optional: true,
        })
        .expect("plan accepts the path; the launcher checks the host");
    let message = assert_setup_failed(start(&spec));
    let expected = format!(
        "mount source {}: contains a symlink at {}; name the resolved path",
        link.display(),
        link.display()
    );
    assert_eq!(message, expected);
}

fn missing_required_source_rejected() {
    let fixture = Fixture::new();
    let missing = fixture.dir.path().join("missing");
    let mut spec = fixture.spec("true");
    spec.mounts
        .add_bind(Bind {
            source: missing.clone(),
            target: PathBuf::from("/opt/app"),
            writable: false,
            optional: false,
        })
        .expect("bind");
    let message = assert_setup_failed(start(&spec));
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
    assert!(message.contains("not found"), "{message}");
}

fn missing_optional_source_skipped() {
    let fixture = Fixture::new();
    let mut spec = fixture.spec("test -e /opt/app && echo app=present || echo app=absent");
    spec.mounts
        .add_bind(Bind {
            source: fixture.dir.path().join("missing"),
            target: PathBuf::from("/opt/app"),
            writable: false,
            optional: true,
        })
        .expect("bind");
    let mut started = start(&spec);
    assert_eq!(started.output_until_ready(), ["app=absent"]);
    assert_eq!(started.finish().exit_code, 0);
}

fn root_host_uid_rejected() {
    let fixture = Fixture::new();
    let mut spec = fixture.spec("true");
    spec.host_uid = 0;
    let message = assert_setup_failed(start(&spec));
    assert!(message.contains("host_uid is 0"), "{message}");
}

fn unavailable_namespace_named() {
    let (_fixture, spec) = spec_with_shell("true");
    let options = StartOptions {
        args: vec![
            "__launcher-without-netns".to_string(),
            shell_path().display().to_string(),
        ],
        with_channel: true,
    };
    let message = assert_setup_failed(start_with(&spec, options));
    assert!(
        message.starts_with("clone into new user, mount, pid"),
        "{message}"
    );
    assert!(
        message.contains("unavailable namespace types: network (EPERM"),
        "{message}"
    );
    for name in ["user", "mount", "pid", "ipc", "uts", "cgroup"] {
        assert!(
            !message.contains(&format!(" {name} (")),
            "{name} reported: {message}"
        );
    }
}

fn missing_channel_rejected() {
    let (_fixture, spec) = spec_with_shell("true");
    let options = StartOptions {
        with_channel: false,
        ..StartOptions::default()
    };
    let message = assert_setup_failed(start_with(&spec, options));
    assert!(
        message.contains("fd 3 (the hub channel) is not open"),
        "{message}"
    );
}

fn exit_code_propagates() {
    let (_fixture, spec) = spec_with_shell("exit 7");
    let mut started = start(&spec);
    started.runtime_pid();
    assert_eq!(started.wait_launcher(), 7);
}

fn sigterm_forwarded() {
    // PID 1 of a namespace only receives signals it handles, hence the trap.
    let (_fixture, spec) =
        spec_with_shell("trap 'exit 42' TERM\necho ready\nwhile :; do sleep 0.1; done");
    let mut started = start(&spec);
    started.runtime_pid();
    started.output_until_ready();
    // SAFETY: kill takes integer arguments only.
    let rc = unsafe { libc::kill(started.launcher_pid(), libc::SIGTERM) };
    assert_eq!(rc, 0, "signal the launcher");
    assert_eq!(started.wait_launcher(), 42);
}

fn killed_runtime_reports_signal() {
    let (_fixture, spec) = spec_with_shell("true");
    let mut started = start(&spec);
    let pid = started.runtime_pid();
    started.output_until_ready();
    // SAFETY: kill takes integer arguments only.
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(rc, 0, "kill the runtime");
    assert_eq!(started.wait_launcher(), 128 + libc::SIGKILL);
}

fn launcher_death_kills_runtime() {
    let (_fixture, spec) = spec_with_shell("true");
    let mut started = start(&spec);
    let pid = started.runtime_pid();
    started.output_until_ready();
    // SAFETY: kill takes integer arguments only.
    let rc = unsafe { libc::kill(started.launcher_pid(), libc::SIGKILL) };
    assert_eq!(rc, 0, "kill the launcher");
    assert_eq!(started.wait_launcher(), 128 + libc::SIGKILL);
    assert!(
        wait_process_gone(pid),
        "runtime {pid} survived its launcher"
    );
}

fn cgroup_procs_joined() {
    let cgroup = TestCgroup::create().unwrap_or_else(|reason| panic!("{reason}"));
    let (_fixture, mut spec) = spec_with_shell("true");
    spec.cgroup_procs = vec![cgroup.dir.join("cgroup.procs")];
    let mut started = start(&spec);
    let pid = started.runtime_pid();
    started.output_until_ready();
    let procs = std::fs::read_to_string(cgroup.dir.join("cgroup.procs")).expect("read procs");
    let members: Vec<&str> = procs.lines().collect();
    assert!(
        members.contains(&pid.to_string().as_str()),
        "runtime {pid} not in {members:?}"
    );
    let launcher = started.launcher_pid().to_string();
    assert!(
        members.contains(&launcher.as_str()),
        "launcher not in {members:?}"
    );
    assert_eq!(started.finish().exit_code, 0);
}

fn current_exe_runs_inside() {
    let (_fixture, mut spec) = spec_with_shell("unused");
    spec.runtime_args = vec!["launch-test".to_string(), INSIDE_MODE.to_string()];
    let options = StartOptions {
        args: vec!["__launcher-current-exe".to_string()],
        with_channel: true,
    };
    let started = start_with(&spec, options);
    let pid = started.runtime_pid();
    assert!(pid > 1, "host pid {pid}");
    let finished = started.finish();
    assert_eq!(finished.exit_code, 0);
    assert_eq!(
        finished.late_output,
        "inside uid=0 pid=1 hostname=bulkhead-launch-test\n"
    );
}

fn run_close_fds(method: &str) -> i32 {
    let pipes: Vec<(OwnedFd, OwnedFd)> = (0..4)
        .map(|_| nix::unistd::pipe().expect("create pipe"))
        .collect();
    let kept_fd = pipes[1].0.as_raw_fd();
    let result = match method {
        "walk" => fds::close_other_fds_by_walk(&[0, 1, 2, kept_fd]),
        _ => fds::close_other_fds(&[kept_fd, 2, 1, 0]),
    };
    if let Err(err) = result {
        println!("error: {err}");
        return 1;
    }
    let mut open = Vec::new();
    for fd in 0..1024 {
        // SAFETY: F_GETFD only reads descriptor flags, and closed descriptors give EBADF.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
            open.push(fd);
        }
    }
    println!("{open:?}");
    // The pipes' descriptors were closed behind the OwnedFds' backs.
    std::mem::forget(pipes);
    0
}

fn check_close_fds(method: &str) {
    let output = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([CLOSE_FDS_MODE, method])
        .output()
        .expect("run close-fds subprocess");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let open: Vec<i32> = serde_json::from_str(stdout.trim()).expect("fd list");
    assert_eq!(open.len(), 4, "open fds {open:?}");
    assert_eq!(&open[..3], &[0, 1, 2]);
    assert!(open[3] > 2, "kept pipe fd missing: {open:?}");
}

fn close_fds_with_close_range() {
    check_close_fds("range");
}

fn close_fds_by_walk() {
    check_close_fds("walk");
}
