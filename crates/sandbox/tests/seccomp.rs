//! Runs programs under the compiled seccomp filters and checks what each syscall returns.
//!
//! Filters cannot be removed once installed, so each case runs in a fresh process: the test binary
//! itself, started with `--exact filtered_child_entry` and the case name in an environment variable.
//! The child installs the filters on its test thread, runs the case there and prints a marker, and
//! the parent test checks the exit status and the marker.

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};

use bulkhead_sandbox::seccomp::{
    denied_syscalls, NetworkFamilies, SeccompPolicy, DENIED_CLONE_FLAGS,
};

const CASE_ENV: &str = "BULKHEAD_SECCOMP_TEST_CASE";
const NETWORK_ENV: &str = "BULKHEAD_SECCOMP_TEST_NETWORK";
const X32_SYSCALL_BIT: i64 = 0x4000_0000;
const PER_LINUX: u64 = 0;
const UNAME26: u64 = 0x0002_0000;
const ADDR_NO_RANDOMIZE: u64 = 0x0004_0000;
const READ_IMPLIES_EXEC: u64 = 0x0040_0000;
const PERSONALITY_QUERY: u64 = 0xffff_ffff;

type Case = fn();

/// The cases a child can run, by name.
const CASES: &[(&str, Case)] = &[
    ("status_shows_filters", status_shows_filters),
    #[cfg(target_arch = "x86_64")]
    ("i386_syscall_kills", i386_syscall_kills),
    ("ptrace_eperm", ptrace_eperm),
    ("bpf_eperm", bpf_eperm),
    ("mount_eperm", mount_eperm),
    ("every_denied_syscall_eperm", every_denied_syscall_eperm),
    ("unshare_newuser_eperm", unshare_newuser_eperm),
    ("clone_newuser_eperm", clone_newuser_eperm),
    (
        "clone_every_namespace_flag_eperm",
        clone_every_namespace_flag_eperm,
    ),
    ("clone3_enosys", clone3_enosys),
    ("unknown_syscall_enosys", unknown_syscall_enosys),
    ("x32_syscall_enosys", x32_syscall_enosys),
    ("tiocsti_eperm", tiocsti_eperm),
    ("tioclinux_eperm", tioclinux_eperm),
    ("personality_values", personality_values),
    (
        "foreign_socket_families_eperm",
        foreign_socket_families_eperm,
    ),
    ("inet_sockets_allowed", inet_sockets_allowed),
    ("inet_sockets_eperm", inet_sockets_eperm),
    ("unix_socketpair_passcred", unix_socketpair_passcred),
    ("eight_threads", eight_threads),
    ("statx_works", statx_works),
    ("sh_exit_code", sh_exit_code),
    ("python_asyncio_subprocess", python_asyncio_subprocess),
    (
        "node_child_process_and_worker",
        node_child_process_and_worker,
    ),
];

/// Entry point of the filtered child. Without the case variable it returns at once, so a plain
/// `cargo test` run passes through it.
#[test]
fn filtered_child_entry() {
    let Ok(case_name) = std::env::var(CASE_ENV) else {
        return;
    };
    let network = match std::env::var(NETWORK_ENV).as_deref() {
        Ok("unix_only") => NetworkFamilies::UnixOnly,
        _ => NetworkFamilies::UnixAndInet,
    };
    let case = CASES
        .iter()
        .find(|(name, _)| *name == case_name)
        .map(|&(_, case)| case)
        .unwrap_or_else(|| panic!("unknown seccomp test case {case_name}"));

    let filters = SeccompPolicy { network }
        .compile()
        .expect("compile filters");
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only and affects this thread alone.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    assert_eq!(
        rc,
        0,
        "prctl(PR_SET_NO_NEW_PRIVS): {}",
        io::Error::last_os_error()
    );
    // A case that the filter kills must not leave a core file behind.
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: no_core is a valid rlimit that outlives the call.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
    assert_eq!(
        rc,
        0,
        "setrlimit(RLIMIT_CORE): {}",
        io::Error::last_os_error()
    );
    filters.apply().expect("apply filters");

    case();
    println!("seccomp case {case_name} ran");
}

/// Runs `case` in a filtered child process and returns the child's output.
fn run_child(case: &str, network: NetworkFamilies) -> Output {
    let network_name = match network {
        NetworkFamilies::UnixOnly => "unix_only",
        NetworkFamilies::UnixAndInet => "unix_and_inet",
    };
    let exe = std::env::current_exe().expect("path of the test binary");
    Command::new(exe)
        .args([
            "--exact",
            "filtered_child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CASE_ENV, case)
        .env(NETWORK_ENV, network_name)
        .stdin(Stdio::null())
        .output()
        .expect("start the test binary as a child")
}

/// Runs `case` in a filtered child process and fails with its output unless it succeeded.
fn run_filtered(case: &str, network: NetworkFamilies) {
    let output = run_child(case, network);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "case {case} failed with {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains(&format!("seccomp case {case} ran")),
        "case {case} did not run\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

/// Calls syscall `number` with up to five integer arguments and returns the result or the errno.
///
/// # Safety
///
/// The arguments must be valid for that syscall: any pointer among them points to memory that
/// outlives the call, and the call must not break memory the process relies on.
unsafe fn raw_syscall(number: i64, args: [u64; 5]) -> Result<i64, i32> {
    // SAFETY: the caller guarantees that the arguments are valid for this syscall.
    let rc = unsafe { libc::syscall(number, args[0], args[1], args[2], args[3], args[4]) };
    if rc == -1 {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(rc)
    }
}

/// Calls a syscall whose arguments are all zero, null pointers included.
fn zero_arg_syscall(number: i64) -> Result<i64, i32> {
    // SAFETY: a null pointer is never dereferenced by the kernel without a check (it returns
    // EFAULT), and the filter returns EPERM for the denied calls used here before the kernel runs them.
    unsafe { raw_syscall(number, [0; 5]) }
}

/// Calls `clone` with `flags` and no new stack, as `fork` does, and reaps a child if one appears.
fn clone_with_flags(flags: u64) -> Result<i64, i32> {
    // SAFETY: without CLONE_VM the child gets a copy of the address space, so a null stack means
    // "use the current stack" exactly like fork. The other arguments are unused without
    // CLONE_SETTLS, CLONE_PARENT_SETTID and CLONE_CHILD_SETTID.
    let result = unsafe { raw_syscall(libc::SYS_clone, [flags, 0, 0, 0, 0]) };
    match result {
        // SAFETY: _exit is async-signal-safe and ends the unexpected child at once.
        Ok(0) => unsafe { libc::_exit(0) },
        Ok(pid) => {
            let mut status = 0;
            // SAFETY: status is a valid out-pointer; pid is the child the call just created.
            unsafe {
                libc::waitpid(
                    libc::pid_t::try_from(pid).expect("pid fits pid_t"),
                    &mut status,
                    0,
                )
            };
            Ok(pid)
        }
        Err(errno) => Err(errno),
    }
}

fn status_shows_filters() {
    // /proc/self/status describes the main thread; the filters sit on this test thread.
    let status = std::fs::read_to_string("/proc/thread-self/status").expect("read status");
    let lines: Vec<&str> = status.lines().collect();
    assert!(lines.contains(&"Seccomp:\t2"), "{status}");
    assert!(lines.contains(&"NoNewPrivs:\t1"), "{status}");
    assert!(lines.contains(&"Seccomp_filters:\t2"), "{status}");
}

/// Enters the kernel through the i386 `int 0x80` gate, whose audit architecture is not x86_64.
#[cfg(target_arch = "x86_64")]
fn i386_syscall_kills() {
    const I386_GETPID: u32 = 20;
    // SAFETY: i386 getpid reads no memory and writes only eax, which is declared clobbered. The
    // filter kills the process before the kernel runs the call.
    unsafe { std::arch::asm!("int 0x80", inlateout("eax") I386_GETPID => _, options(nostack)) };
    panic!("the i386 syscall returned instead of killing the process");
}

fn ptrace_eperm() {
    // SAFETY: PTRACE_TRACEME takes no pointers.
    let result =
        unsafe { raw_syscall(libc::SYS_ptrace, [libc::PTRACE_TRACEME as u64, 0, 0, 0, 0]) };
    assert_eq!(result, Err(libc::EPERM));
}

fn bpf_eperm() {
    const BPF_PROG_LOAD: u64 = 5;
    // SAFETY: the filter rejects the call before the kernel reads the null attribute pointer.
    let result = unsafe { raw_syscall(libc::SYS_bpf, [BPF_PROG_LOAD, 0, 0, 0, 0]) };
    assert_eq!(result, Err(libc::EPERM));
}

fn mount_eperm() {
    // A missing target keeps the call harmless even if the filter failed to deny it.
    let source = CString::new("none").expect("no NUL");
    let target = CString::new("/nonexistent-bulkhead-mount-target").expect("no NUL");
    let fstype = CString::new("tmpfs").expect("no NUL");
    // SAFETY: the strings are NUL-terminated and outlive the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    assert_eq!(rc, -1);
    assert_eq!(io::Error::last_os_error().raw_os_error(), Some(libc::EPERM));
}

fn every_denied_syscall_eperm() {
    // These would change state if a broken filter let them through with zero arguments:
    // ptrace(PTRACE_TRACEME) makes the test process a tracer, acct(NULL) turns off process
    // accounting, vhangup hangs up the terminal and kexec_load unloads a loaded kexec image.
    let unsafe_to_call = ["ptrace", "acct", "vhangup", "kexec_load"];
    for syscall in denied_syscalls() {
        if unsafe_to_call.contains(&syscall.name()) {
            continue;
        }
        assert_eq!(
            zero_arg_syscall(syscall.number),
            Err(libc::EPERM),
            "{}",
            syscall.name()
        );
    }
}

fn unshare_newuser_eperm() {
    // SAFETY: unshare takes an integer flag word.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWUSER) };
    assert_eq!(rc, -1);
    assert_eq!(io::Error::last_os_error().raw_os_error(), Some(libc::EPERM));
}

fn clone_newuser_eperm() {
    let flags = (libc::CLONE_NEWUSER | libc::SIGCHLD) as u64;
    assert_eq!(clone_with_flags(flags), Err(libc::EPERM));
}

fn clone_every_namespace_flag_eperm() {
    for &(name, flag) in DENIED_CLONE_FLAGS {
        assert_eq!(
            clone_with_flags(flag | libc::SIGCHLD as u64),
            Err(libc::EPERM),
            "{name}"
        );
    }
    // A plain fork-style clone still works.
    let pid = clone_with_flags(libc::SIGCHLD as u64).expect("clone with SIGCHLD only");
    assert!(pid > 0);
}

fn clone3_enosys() {
    // SAFETY: the filter rejects the call before the kernel reads the null argument pointer.
    let result = unsafe { raw_syscall(libc::SYS_clone3, [0, 0, 0, 0, 0]) };
    assert_eq!(result, Err(libc::ENOSYS));
}

fn unknown_syscall_enosys() {
    assert_eq!(zero_arg_syscall(1000), Err(libc::ENOSYS));
}

fn x32_syscall_enosys() {
    assert_eq!(
        zero_arg_syscall(X32_SYSCALL_BIT | libc::SYS_getpid),
        Err(libc::ENOSYS)
    );
    assert_eq!(
        zero_arg_syscall(X32_SYSCALL_BIT | libc::SYS_getuid),
        Err(libc::ENOSYS)
    );
}

fn ioctl_on_stdin(request: u64) -> Result<i64, i32> {
    let byte: u8 = b'x';
    // SAFETY: the third argument points to one byte that outlives the call, which is what
    // TIOCSTI reads; TIOCLINUX reads its first byte as the subcode.
    unsafe {
        raw_syscall(
            libc::SYS_ioctl,
            [0, request, &byte as *const u8 as u64, 0, 0],
        )
    }
}

fn tiocsti_eperm() {
    let tiocsti = libc::TIOCSTI;
    assert_eq!(ioctl_on_stdin(tiocsti), Err(libc::EPERM));
    assert_eq!(ioctl_on_stdin(tiocsti | 1 << 32), Err(libc::EPERM));
    // Another tty ioctl passes the filter; stdin is /dev/null, so the kernel returns ENOTTY.
    assert_eq!(ioctl_on_stdin(libc::TIOCGPGRP), Err(libc::ENOTTY));
}

fn tioclinux_eperm() {
    let tioclinux = libc::TIOCLINUX;
    assert_eq!(ioctl_on_stdin(tioclinux), Err(libc::EPERM));
    assert_eq!(ioctl_on_stdin(tioclinux | 1 << 40), Err(libc::EPERM));
}

fn personality(persona: u64) -> Result<i64, i32> {
    // SAFETY: personality takes an integer.
    unsafe { raw_syscall(libc::SYS_personality, [persona, 0, 0, 0, 0]) }
}

fn personality_values() {
    assert_eq!(personality(ADDR_NO_RANDOMIZE), Err(libc::EPERM));
    assert_eq!(personality(UNAME26), Err(libc::EPERM));
    assert_eq!(personality(PER_LINUX | READ_IMPLIES_EXEC), Err(libc::EPERM));
    // The kernel reads the persona as 32 bits, so upper bits do not turn a denied value into 0.
    assert_eq!(personality(ADDR_NO_RANDOMIZE | 1 << 32), Err(libc::EPERM));
    let current = personality(PERSONALITY_QUERY).expect("query personality");
    assert_eq!(current, 0);
    assert_eq!(personality(PER_LINUX), Ok(0));
}

fn socket_errno(family: libc::c_int, kind: libc::c_int) -> Option<i32> {
    // SAFETY: socket takes integers; a returned descriptor is closed right away.
    let fd = unsafe { libc::socket(family, kind, 0) };
    if fd >= 0 {
        // SAFETY: fd was just returned by socket and is owned here.
        unsafe { libc::close(fd) };
        return None;
    }
    io::Error::last_os_error().raw_os_error()
}

fn socketpair_errno(family: libc::c_int) -> Option<i32> {
    let mut fds = [-1; 2];
    // SAFETY: fds has room for the two descriptors socketpair writes.
    let rc = unsafe { libc::socketpair(family, libc::SOCK_DGRAM, 0, fds.as_mut_ptr()) };
    if rc == 0 {
        // SAFETY: both descriptors were just created and are owned here.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        return None;
    }
    io::Error::last_os_error().raw_os_error()
}

fn foreign_socket_families_eperm() {
    assert_eq!(
        socket_errno(libc::AF_NETLINK, libc::SOCK_RAW),
        Some(libc::EPERM)
    );
    assert_eq!(
        socket_errno(libc::AF_PACKET, libc::SOCK_RAW),
        Some(libc::EPERM)
    );
    assert_eq!(
        socket_errno(libc::AF_VSOCK, libc::SOCK_STREAM),
        Some(libc::EPERM)
    );
    assert_eq!(
        socket_errno(libc::AF_NETLINK | 1 << 16, libc::SOCK_RAW),
        Some(libc::EPERM)
    );
    assert_eq!(socketpair_errno(libc::AF_NETLINK), Some(libc::EPERM));
    assert_eq!(socketpair_errno(libc::AF_UNIX), None);
}

fn inet_sockets_allowed() {
    assert_eq!(socket_errno(libc::AF_INET, libc::SOCK_STREAM), None);
    assert_eq!(socket_errno(libc::AF_UNIX, libc::SOCK_STREAM), None);
    // IPv6 may be disabled on the host, which the kernel reports as EAFNOSUPPORT, never EPERM.
    assert_ne!(
        socket_errno(libc::AF_INET6, libc::SOCK_DGRAM),
        Some(libc::EPERM)
    );
}

fn inet_sockets_eperm() {
    assert_eq!(
        socket_errno(libc::AF_INET, libc::SOCK_STREAM),
        Some(libc::EPERM)
    );
    assert_eq!(
        socket_errno(libc::AF_INET6, libc::SOCK_DGRAM),
        Some(libc::EPERM)
    );
    assert_eq!(socket_errno(libc::AF_UNIX, libc::SOCK_STREAM), None);
}

fn unix_socketpair_passcred() {
    let (mut left, mut right) = UnixStream::pair().expect("socketpair(AF_UNIX)");
    let enable: libc::c_int = 1;
    // SAFETY: the option value points to a c_int that outlives the call, with its size.
    let rc = unsafe {
        libc::setsockopt(
            right.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PASSCRED,
            &enable as *const libc::c_int as *const libc::c_void,
            libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>())
                .expect("int size fits socklen_t"),
        )
    };
    assert_eq!(
        rc,
        0,
        "setsockopt(SO_PASSCRED): {}",
        io::Error::last_os_error()
    );

    let message: Vec<u8> = (0..1024u32).map(|i| (i % 251) as u8).collect();
    left.write_all(&message).expect("send 1 KiB");
    let mut received = vec![0u8; message.len()];
    right.read_exact(&mut received).expect("receive 1 KiB");
    assert_eq!(received, message);
}

fn eight_threads() {
    let handles: Vec<_> = (0..8u64)
        .map(|i| std::thread::spawn(move || (0..1000u64).map(|n| n * i).sum::<u64>()))
        .collect();
    let sums: Vec<u64> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    let expected: Vec<u64> = (0..8u64).map(|i| 499_500 * i).collect();
    assert_eq!(sums, expected);
}

fn statx_works() {
    let path = CString::new("/").expect("no NUL");
    // SAFETY: statx is plain old data, so all-zero bytes are a valid value.
    let mut buffer: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: path is NUL-terminated and buffer is a writable statx that outlives the call.
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            path.as_ptr(),
            0,
            libc::STATX_BASIC_STATS,
            &mut buffer,
        )
    };
    assert_eq!(rc, 0, "statx(/): {}", io::Error::last_os_error());
    assert_eq!(u32::from(buffer.stx_mode) & libc::S_IFMT, libc::S_IFDIR);
}

fn sh_exit_code() {
    let status = Command::new("/bin/sh")
        .args(["-c", "exit 7"])
        .status()
        .expect("run /bin/sh");
    assert_eq!(status.code(), Some(7));
}

/// Returns whether `program` starts, printing a skip reason when it does not.
fn available(program: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        println!("skipped: {program} is not installed");
    }
    found
}

const PYTHON_ASYNCIO: &str = r#"
import asyncio

async def main():
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", "echo ready; exit 3", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert out == b"ready\n", out
    assert proc.returncode == 3, proc.returncode
    assert await asyncio.to_thread(sum, range(10)) == 45
    print("asyncio ok")

asyncio.run(main())
"#;

fn python_asyncio_subprocess() {
    let output = Command::new("python3")
        .args(["-c", PYTHON_ASYNCIO])
        .output()
        .expect("run python3");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "python3 failed: {stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "asyncio ok\n");
}

const NODE_PROGRAM: &str = r#"
const { execFileSync } = require("child_process");
const { Worker } = require("worker_threads");
const out = execFileSync("/bin/sh", ["-c", "echo ready"]).toString();
if (out !== "ready\n") throw new Error("unexpected output " + out);
let total = 0;
for (let i = 0; i < 2e6; i++) total += i % 7;
const worker = new Worker("require('worker_threads').parentPort.postMessage(6 * 7)", { eval: true });
worker.on("message", (value) => { console.log("node ok " + value + " " + total); });
"#;

fn node_child_process_and_worker() {
    let output = Command::new("node")
        .args(["-e", NODE_PROGRAM])
        .output()
        .expect("run node");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "node failed: {stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "node ok 42 5999995\n"
    );
}

macro_rules! filtered_tests {
    ($($test:ident => $case:literal, $network:ident;)*) => {$(
        #[test]
        fn $test() {
            run_filtered($case, NetworkFamilies::$network);
        }
    )*};
}

filtered_tests! {
    filters_show_in_status => "status_shows_filters", UnixAndInet;
    ptrace_is_denied => "ptrace_eperm", UnixAndInet;
    bpf_is_denied => "bpf_eperm", UnixAndInet;
    mount_is_denied => "mount_eperm", UnixAndInet;
    denied_table_returns_eperm => "every_denied_syscall_eperm", UnixAndInet;
    unshare_newuser_is_denied => "unshare_newuser_eperm", UnixAndInet;
    clone_newuser_is_denied => "clone_newuser_eperm", UnixAndInet;
    clone_namespace_flags_denied => "clone_every_namespace_flag_eperm", UnixAndInet;
    clone3_returns_enosys => "clone3_enosys", UnixAndInet;
    unknown_syscall_returns_enosys => "unknown_syscall_enosys", UnixAndInet;
    x32_syscall_returns_enosys => "x32_syscall_enosys", UnixAndInet;
    tiocsti_is_denied => "tiocsti_eperm", UnixAndInet;
    tioclinux_is_denied => "tioclinux_eperm", UnixAndInet;
    personality_only_default_values => "personality_values", UnixAndInet;
    foreign_socket_families_denied => "foreign_socket_families_eperm", UnixOnly;
    foreign_families_denied_with_inet => "foreign_socket_families_eperm", UnixAndInet;
    inet_allowed_with_inet_policy => "inet_sockets_allowed", UnixAndInet;
    inet_denied_with_unix_only => "inet_sockets_eperm", UnixOnly;
    unix_socketpair_passes_credentials => "unix_socketpair_passcred", UnixOnly;
    eight_threads_start => "eight_threads", UnixOnly;
    statx_is_allowed => "statx_works", UnixOnly;
    sh_reports_exit_code => "sh_exit_code", UnixOnly;
}

#[cfg(target_arch = "x86_64")]
#[test]
fn i386_syscall_kills_process() {
    let output = run_child("i386_syscall_kills", NetworkFamilies::UnixOnly);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGSYS),
        "{:?}\nstderr:\n{stderr}",
        output.status
    );
}

#[test]
fn python_asyncio_runs_filtered() {
    if available("python3") {
        run_filtered("python_asyncio_subprocess", NetworkFamilies::UnixAndInet);
    }
}

#[test]
fn node_runs_filtered() {
    if available("node") {
        run_filtered("node_child_process_and_worker", NetworkFamilies::UnixOnly);
    }
}
