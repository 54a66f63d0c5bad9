//! The table of attempts: one MCP tool each.

use std::time::Duration;

use super::{child, fs, kernel, legit, net, procs, resources, Args, Attempt, Outcome};

const PATH: &[(&str, &str)] = &[("path", "string")];
const PID: &[(&str, &str)] = &[("pid", "integer")];
const NONE: &[(&str, &str)] = &[];
const TERMINAL: &[(&str, &str)] = &[
    ("fd", "integer"),
    ("path", "string"),
    ("high_bit", "integer"),
];
const HOST_PORT: &[(&str, &str)] = &[("host", "string"), ("port", "integer")];

macro_rules! attempt {
    ($name:literal, $description:literal, $params:expr, $run:path) => {
        Attempt {
            name: $name,
            description: $description,
            params: $params,
            run: $run,
        }
    };
}

/// Every attempt the hostile app offers.
pub static ALL: &[Attempt] = &[
    // Files
    attempt!(
        "read_file",
        "Reads a file and returns its content.",
        PATH,
        fs::read_file
    ),
    attempt!(
        "write_file",
        "Writes one byte to a file.",
        PATH,
        fs::write_file
    ),
    attempt!("list_dir", "Lists a directory.", PATH, fs::list_dir),
    attempt!(
        "plant_links",
        "Plants /state/escape-symlink and /state/escape-hardlink to a target.",
        &[("target", "string")],
        fs::plant_links
    ),
    attempt!("mknod", "Creates a character device node.", PATH, fs::mknod),
    attempt!(
        "list_fds",
        "Lists this process's descriptors and their targets.",
        NONE,
        fs::list_fds
    ),
    attempt!(
        "use_fd",
        "Uses a descriptor number with fchdir, openat and read.",
        &[("fd", "integer")],
        fs::use_fd
    ),
    // Processes
    attempt!(
        "kill",
        "Sends a signal to a pid.",
        &[("pid", "integer"), ("signal", "integer")],
        procs::kill
    ),
    attempt!(
        "read_proc",
        "Reads /proc/PID/FILE.",
        &[("pid", "integer"), ("file", "string")],
        procs::read_proc
    ),
    attempt!(
        "ptrace_attach",
        "Attaches to a pid with ptrace.",
        PID,
        procs::ptrace_attach
    ),
    attempt!(
        "process_vm_readv",
        "Reads another process's memory.",
        PID,
        procs::vm_readv
    ),
    // Network
    attempt!(
        "connect_tcp",
        "Connects over TCP to an IP literal and port.",
        HOST_PORT,
        net::connect_tcp
    ),
    attempt!(
        "connect_abstract",
        "Connects to an abstract Unix socket.",
        &[("name", "string")],
        net::connect_abstract
    ),
    attempt!(
        "connect_unix",
        "Connects to a Unix socket path.",
        PATH,
        net::connect_unix
    ),
    attempt!(
        "open_socket",
        "Opens a packet, vsock or netlink socket.",
        &[("family", "string")],
        net::open_socket
    ),
    attempt!(
        "resolve",
        "Resolves a host name with getaddrinfo.",
        &[("name", "string")],
        net::resolve
    ),
    attempt!(
        "send_udp",
        "Sends one UDP datagram.",
        HOST_PORT,
        net::send_udp
    ),
    // Kernel interfaces
    attempt!("mount", "Mounts a tmpfs on /tmp.", NONE, kernel::mount),
    attempt!(
        "umount2",
        "Detaches the /state mount.",
        NONE,
        kernel::umount2
    ),
    attempt!("pivot_root", "Calls pivot_root.", NONE, kernel::pivot_root),
    attempt!(
        "chroot_escape",
        "Calls chroot and then chdir(\"..\") repeatedly.",
        NONE,
        kernel::chroot_escape
    ),
    attempt!(
        "unshare_user",
        "Calls unshare(CLONE_NEWUSER).",
        NONE,
        kernel::unshare_user
    ),
    attempt!(
        "clone_newuser",
        "Calls clone(CLONE_NEWUSER).",
        NONE,
        kernel::clone_newuser
    ),
    attempt!(
        "setns",
        "Joins PID 1's network namespace with setns.",
        NONE,
        kernel::setns
    ),
    attempt!("fsopen", "Calls fsopen(tmpfs).", NONE, kernel::fsopen),
    attempt!(
        "open_tree",
        "Calls open_tree with OPEN_TREE_CLONE.",
        NONE,
        kernel::open_tree
    ),
    attempt!("keyctl", "Calls keyctl.", NONE, kernel::keyctl),
    attempt!("add_key", "Calls add_key.", NONE, kernel::add_key),
    attempt!("bpf", "Calls bpf(BPF_PROG_LOAD).", NONE, kernel::bpf),
    attempt!(
        "perf_event_open",
        "Calls perf_event_open.",
        NONE,
        kernel::perf_event_open
    ),
    attempt!(
        "userfaultfd",
        "Calls userfaultfd.",
        NONE,
        kernel::userfaultfd
    ),
    attempt!(
        "io_uring_setup",
        "Calls io_uring_setup.",
        NONE,
        kernel::io_uring_setup
    ),
    attempt!(
        "personality",
        "Calls personality(READ_IMPLIES_EXEC).",
        NONE,
        kernel::personality
    ),
    attempt!(
        "x32_syscall",
        "Calls getpid with the x32 bit set, in a helper process.",
        NONE,
        x32_syscall
    ),
    attempt!(
        "int80",
        "Calls i386 getpid through int 0x80, in a helper process.",
        NONE,
        int80
    ),
    attempt!(
        "tiocsti",
        "Pushes a byte into a terminal's input with TIOCSTI.",
        TERMINAL,
        kernel::tiocsti
    ),
    attempt!(
        "tioclinux",
        "Calls TIOCLINUX on a terminal.",
        TERMINAL,
        kernel::tioclinux
    ),
    // Privileges
    attempt!(
        "exec_setuid",
        "Execs a setuid copy of this binary from /state.",
        &[("name", "string")],
        resources::exec_setuid
    ),
    // Resources
    attempt!(
        "fork_bomb",
        "Forks until the pids limit stops it.",
        &[("after_unshare", "integer")],
        resources::fork_bomb
    ),
    attempt!(
        "allocate",
        "Allocates and touches memory.",
        &[("megabytes", "integer")],
        resources::allocate
    ),
    attempt!(
        "cpu_spin",
        "Spins 2 threads and reports CPU seconds per wall second.",
        &[("seconds", "integer")],
        resources::cpu_spin
    ),
    attempt!(
        "hang",
        "Sleeps without answering.",
        &[("seconds", "integer")],
        resources::hang
    ),
    attempt!(
        "orphans",
        "Leaves orphaned children for PID 1 to reap.",
        &[("count", "integer")],
        resources::orphans
    ),
    attempt!(
        "count_zombies",
        "Counts zombie processes in /proc.",
        NONE,
        resources::count_zombies
    ),
    attempt!(
        "shell_exit",
        "Runs sh -c 'exit 7'.",
        NONE,
        resources::shell_exit
    ),
    // Legitimate work
    attempt!(
        "threads",
        "Starts and joins 8 threads.",
        NONE,
        legit::threads
    ),
    attempt!(
        "resolve_localhost",
        "Resolves localhost.",
        NONE,
        legit::resolve_localhost
    ),
    attempt!(
        "socketpair_passcred",
        "Sends 1 KiB over a socketpair with SO_PASSCRED.",
        NONE,
        legit::socketpair_passcred
    ),
    attempt!(
        "statx_rseq",
        "Calls statx and rseq.",
        NONE,
        legit::statx_rseq
    ),
];

/// Reports the errno the x32 call got, or how the helper died.
fn x32_syscall(_: &Args) -> Outcome {
    let outcome = child::run_self("x32", 0, Duration::from_secs(10));
    if outcome.result == "exit 0" {
        return Outcome::new(outcome.detail.clone(), "getpid | 0x40000000 in a helper");
    }
    outcome
}

fn int80(_: &Args) -> Outcome {
    child::run_self("int80", 0, Duration::from_secs(10))
}
