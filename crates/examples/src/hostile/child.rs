//! Attempts that must run in a helper process, because they may get it killed (seccomp kills on
//! an architecture mismatch) or because they fork many processes.
//!
//! A tool runs `/proc/self/exe --helper NAME [ARG]`. The helper is single-threaded, makes its
//! attempt, prints what it saw on stdout and exits.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::Outcome;

/// Argument that selects the helper mode.
pub const HELPER_FLAG: &str = "--helper";

/// Runs the helper named in `argv` and exits, or returns when `argv` names no helper.
pub fn run_helper_mode() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some(HELPER_FLAG) {
        return;
    }
    let name = args.get(2).map(String::as_str).unwrap_or_default();
    let argument: u64 = args.get(3).and_then(|text| text.parse().ok()).unwrap_or(0);
    let code = match name {
        "int80" => int80(),
        "x32" => x32(),
        "fork-bomb" => super::resources::fork_bomb_helper(argument),
        "orphans" => super::resources::orphans_helper(argument),
        "report-ids" => report_ids(),
        _ => {
            println!("unknown helper {name}");
            2
        }
    };
    std::process::exit(code);
}

/// Runs a helper to completion within `timeout` and describes how it ended: `"exit N"` or
/// `"killed by SIGNAME"`, with its stdout as the detail.
pub fn run_helper(program: &str, args: &[String], timeout: Duration) -> Outcome {
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => return Outcome::error(&error, format!("spawn {program}")),
    };
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let mut output = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut output);
    }
    match status {
        Some(status) => Outcome::new(describe(status), output.trim().to_string()),
        None => Outcome::new("timed out", output.trim().to_string()),
    }
}

/// Runs `/proc/self/exe --helper NAME ARGUMENT`.
pub fn run_self(name: &str, argument: u64, timeout: Duration) -> Outcome {
    let args = [
        HELPER_FLAG.to_string(),
        name.to_string(),
        argument.to_string(),
    ];
    run_helper("/proc/self/exe", &args, timeout)
}

fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit {code}");
    }
    match status.signal() {
        Some(libc::SIGSYS) => "killed by SIGSYS".to_string(),
        Some(libc::SIGKILL) => "killed by SIGKILL".to_string(),
        Some(libc::SIGSEGV) => "killed by SIGSEGV".to_string(),
        Some(signal) => format!("killed by signal {signal}"),
        None => "ended".to_string(),
    }
}

/// Makes the i386 `getpid` system call (number 20) through `int 0x80` from 64-bit code.
fn int80() -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        let mut ret: i64 = 20;
        // SAFETY: i386 getpid reads no memory and changes no state. The kernel clobbers only rax.
        unsafe { std::arch::asm!("int 0x80", inout("rax") ret, options(nostack)) };
        println!("int 0x80 getpid returned {ret}");
        0
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        println!("int 0x80 exists on x86_64 only");
        3
    }
}

/// Makes `getpid` with the x32 bit (0x40000000) set in the syscall number.
fn x32() -> i32 {
    const X32_SYSCALL_BIT: libc::c_long = 0x4000_0000;
    // SAFETY: getpid takes no arguments and changes no state.
    let ret = unsafe { libc::syscall(X32_SYSCALL_BIT | libc::SYS_getpid) };
    if ret < 0 {
        println!("{}", super::errno_name(&std::io::Error::last_os_error()));
    } else {
        println!("ok: returned {ret}");
    }
    0
}

/// Prints the effective uid and the CapEff line of /proc/self/status.
fn report_ids() -> i32 {
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cap_eff = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .unwrap_or("?")
        .trim()
        .to_string();
    println!("euid={euid} CapEff={cap_eff}");
    0
}
