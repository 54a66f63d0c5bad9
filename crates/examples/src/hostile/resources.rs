//! Resource attempts: fork bombs, memory, CPU, hung calls, orphans and exit codes.

use std::time::{Duration, Instant};

use super::child::{run_helper, run_self};
use super::{Args, Outcome};

/// Upper bound on the processes a fork bomb helper creates, so that a missing limit ends the test
/// instead of the machine.
const FORK_BOMB_CAP: u64 = 4096;

/// How long fork bomb children and orphans stay alive, in milliseconds.
const CHILD_LIFETIME_MS: u64 = 3000;

/// Forks until fork fails or `FORK_BOMB_CAP` children exist, and reports how many it made. With
/// `after_unshare` set, first tries `unshare(CLONE_NEWPID | CLONE_NEWUSER)` and ignores its
/// failure.
pub fn fork_bomb(args: &Args) -> Outcome {
    let after_unshare = u64::from(args.int("after_unshare", 0) == 1);
    run_self("fork-bomb", after_unshare, Duration::from_secs(30))
}

/// Body of the fork bomb helper.
pub fn fork_bomb_helper(after_unshare: u64) -> i32 {
    if after_unshare == 1 {
        // SAFETY: unshare takes a flag word.
        let ret = unsafe { libc::unshare(libc::CLONE_NEWPID | libc::CLONE_NEWUSER) };
        let error = std::io::Error::last_os_error();
        println!(
            "unshare: {}",
            if ret == 0 {
                "ok".to_string()
            } else {
                super::errno_name(&error)
            }
        );
    }
    let mut created = 0u64;
    let mut stop_reason = "cap reached".to_string();
    while created < FORK_BOMB_CAP {
        // SAFETY: the helper is single-threaded, so the child may run any code. It only sleeps
        // and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            std::thread::sleep(Duration::from_millis(CHILD_LIFETIME_MS));
            // SAFETY: _exit ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(0) };
        }
        if pid < 0 {
            stop_reason = super::errno_name(&std::io::Error::last_os_error());
            break;
        }
        created += 1;
    }
    println!("forked {created} children, stopped by {stop_reason}");
    // SAFETY: waiting for any child with a valid status pointer.
    while unsafe { libc::wait(std::ptr::null_mut()) } > 0 {}
    0
}

/// Allocates and touches `megabytes` MiB, one MiB at a time.
pub fn allocate(args: &Args) -> Outcome {
    let megabytes = usize::try_from(args.int("megabytes", 0)).unwrap_or(0);
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    for _ in 0..megabytes {
        blocks.push(vec![0x5a; 1 << 20]);
    }
    Outcome::new("ok", format!("allocated {} MiB", blocks.len()))
}

/// Spins 2 threads for `seconds` of wall time and reports the CPU time used per wall second.
pub fn cpu_spin(args: &Args) -> Outcome {
    let seconds = u64::try_from(args.int("seconds", 3)).unwrap_or(3).min(30);
    let start = Instant::now();
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                let mut counter = 0u64;
                while start.elapsed() < Duration::from_secs(seconds) {
                    counter = std::hint::black_box(counter.wrapping_add(1));
                }
                counter
            })
        })
        .collect();
    for spinner in spinners {
        let _ = spinner.join();
    }
    let wall = start.elapsed().as_secs_f64();
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: usage is a writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    // SAFETY: getrusage filled the struct, and zeroed memory is a valid rusage otherwise.
    let usage = unsafe { usage.assume_init() };
    let cpu = timeval_seconds(usage.ru_utime) + timeval_seconds(usage.ru_stime);
    Outcome::new("ok", format!("{:.3}", cpu / wall))
}

fn timeval_seconds(time: libc::timeval) -> f64 {
    time.tv_sec as f64 + time.tv_usec as f64 / 1e6
}

/// Sleeps for `seconds` without answering, to outlive the call timeout.
pub fn hang(args: &Args) -> Outcome {
    let seconds = u64::try_from(args.int("seconds", 60))
        .unwrap_or(60)
        .min(600);
    std::thread::sleep(Duration::from_secs(seconds));
    Outcome::new("ok", format!("slept {seconds} s"))
}

/// Runs a helper that forks `count` children and exits without waiting, so that PID 1 inherits
/// them as orphans.
pub fn orphans(args: &Args) -> Outcome {
    let count = u64::try_from(args.int("count", 500))
        .unwrap_or(500)
        .min(FORK_BOMB_CAP);
    run_self("orphans", count, Duration::from_secs(30))
}

/// Body of the orphans helper: the children exit right away and become zombies of PID 1.
pub fn orphans_helper(count: u64) -> i32 {
    let mut created = 0u64;
    for _ in 0..count {
        // SAFETY: the helper is single-threaded, and the child only calls _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: _exit ends the child at once.
            unsafe { libc::_exit(0) };
        }
        if pid < 0 {
            break;
        }
        created += 1;
    }
    println!("forked {created} children");
    0
}

/// Counts the zombie processes visible in /proc.
pub fn count_zombies(_: &Args) -> Outcome {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Outcome::new("failed", "cannot list /proc");
    };
    let mut zombies = 0;
    for entry in entries.filter_map(Result::ok) {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        if state == Some('Z') {
            zombies += 1;
        }
    }
    Outcome::new("ok", zombies.to_string())
}

/// Runs `sh -c 'exit 7'` and reports its exit status.
pub fn shell_exit(_: &Args) -> Outcome {
    let args = ["-c".to_string(), "exit 7".to_string()];
    run_helper("/bin/sh", &args, Duration::from_secs(10))
}

/// Execs `/state/NAME --helper report-ids`, a copy of this binary that the suite made setuid.
pub fn exec_setuid(args: &Args) -> Outcome {
    let path = format!("/state/{}", args.str("name"));
    let helper_args = [
        super::child::HELPER_FLAG.to_string(),
        "report-ids".to_string(),
    ];
    run_helper(&path, &helper_args, Duration::from_secs(10))
}
