//! Kernel interface attempts: mounts, namespaces, keyrings, BPF, perf, userfaultfd, io_uring,
//! personality and terminal ioctls, each as one raw system call.

use std::ptr::null;

use super::{c_path, Args, Outcome};

/// `READ_IMPLIES_EXEC` from `<linux/personality.h>`.
const READ_IMPLIES_EXEC: libc::c_ulong = 0x040_0000;

/// Calls `mount("none", "/tmp", "tmpfs", 0, NULL)`.
pub fn mount(_: &Args) -> Outcome {
    let (source, target, kind) = (c_path("none"), c_path("/tmp"), c_path("tmpfs"));
    // SAFETY: every pointer is a valid C string or null.
    let ret = unsafe { libc::mount(source.as_ptr(), target.as_ptr(), kind.as_ptr(), 0, null()) };
    Outcome::from_ret(ret.into(), "mount tmpfs on /tmp")
}

/// Detaches the mount at `/state`.
pub fn umount2(_: &Args) -> Outcome {
    let target = c_path("/state");
    // SAFETY: target is a valid C string.
    let ret = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    Outcome::from_ret(ret.into(), "umount2 /state")
}

/// Calls `pivot_root("/tmp", "/tmp")`.
pub fn pivot_root(_: &Args) -> Outcome {
    let path = c_path("/tmp");
    // SAFETY: both arguments are valid C strings.
    let ret = unsafe { libc::syscall(libc::SYS_pivot_root, path.as_ptr(), path.as_ptr()) };
    Outcome::from_ret(ret, "pivot_root /tmp /tmp")
}

/// Calls `chroot("/tmp")` and then `chdir("..")` 64 times, the classic chroot escape, and lists
/// the directory reached.
pub fn chroot_escape(_: &Args) -> Outcome {
    let tmp = c_path("/tmp");
    // SAFETY: tmp is a valid C string.
    let ret = unsafe { libc::chroot(tmp.as_ptr()) };
    if ret < 0 {
        return Outcome::from_ret(ret.into(), "chroot /tmp");
    }
    let up = c_path("..");
    for _ in 0..64 {
        // SAFETY: up is a valid C string.
        unsafe { libc::chdir(up.as_ptr()) };
    }
    Outcome::new("ok", "chroot succeeded and chdir(\"..\") ran 64 times")
}

/// Calls `unshare(CLONE_NEWUSER)`.
pub fn unshare_user(_: &Args) -> Outcome {
    // SAFETY: unshare takes a flag word.
    let ret = unsafe { libc::unshare(libc::CLONE_NEWUSER) };
    Outcome::from_ret(ret.into(), "unshare(CLONE_NEWUSER)")
}

/// Calls the raw `clone(CLONE_NEWUSER | SIGCHLD)`. A child that the call creates exits at once.
pub fn clone_newuser(_: &Args) -> Outcome {
    let flags = (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: with a null stack the child continues on a copy of this stack, like fork. The child
    // branch below only calls _exit.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if ret == 0 {
        // SAFETY: _exit is async-signal-safe and ends the child.
        unsafe { libc::_exit(0) };
    }
    if let Ok(child) = libc::pid_t::try_from(ret) {
        if child > 0 {
            let mut status = 0;
            // SAFETY: status is a valid out pointer.
            unsafe { libc::waitpid(child, &mut status, 0) };
        }
    }
    Outcome::from_ret(ret, "clone(CLONE_NEWUSER)")
}

/// Joins the network namespace of `/proc/1/ns/net` with setns.
pub fn setns(_: &Args) -> Outcome {
    let path = c_path("/proc/1/ns/net");
    // SAFETY: path is a valid C string. The descriptor is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Outcome::from_ret(fd.into(), "open /proc/1/ns/net");
    }
    // SAFETY: fd is the descriptor opened above.
    let ret = unsafe { libc::setns(fd, libc::CLONE_NEWNET) };
    let outcome = Outcome::from_ret(ret.into(), "setns(/proc/1/ns/net)");
    // SAFETY: fd is owned here.
    unsafe { libc::close(fd) };
    outcome
}

/// Calls `fsopen("tmpfs", 0)` from the new mount API.
pub fn fsopen(_: &Args) -> Outcome {
    let kind = c_path("tmpfs");
    // SAFETY: kind is a valid C string.
    let ret = unsafe { libc::syscall(libc::SYS_fsopen, kind.as_ptr(), 0) };
    Outcome::from_ret(ret, "fsopen(tmpfs)")
}

/// Calls `open_tree(AT_FDCWD, "/", OPEN_TREE_CLONE)`.
pub fn open_tree(_: &Args) -> Outcome {
    let root = c_path("/");
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    // SAFETY: root is a valid C string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            root.as_ptr(),
            OPEN_TREE_CLONE,
        )
    };
    Outcome::from_ret(ret, "open_tree(/, OPEN_TREE_CLONE)")
}

/// Calls `keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1)`.
pub fn keyctl(_: &Args) -> Outcome {
    const KEYCTL_GET_KEYRING_ID: libc::c_long = 0;
    const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
    // SAFETY: this keyctl operation takes integers only.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_GET_KEYRING_ID,
            KEY_SPEC_SESSION_KEYRING,
            1,
        )
    };
    Outcome::from_ret(ret, "keyctl(KEYCTL_GET_KEYRING_ID)")
}

/// Adds a user key to the session keyring.
pub fn add_key(_: &Args) -> Outcome {
    let (kind, description) = (c_path("user"), c_path("escape"));
    let payload = b"secret";
    const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
    // SAFETY: the strings and the payload outlive the call, and the length matches the payload.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_add_key,
            kind.as_ptr(),
            description.as_ptr(),
            payload.as_ptr(),
            payload.len(),
            KEY_SPEC_SESSION_KEYRING,
        )
    };
    Outcome::from_ret(ret, "add_key(user)")
}

/// Calls `bpf(BPF_PROG_LOAD)` with a zeroed attribute block.
pub fn bpf(_: &Args) -> Outcome {
    const BPF_PROG_LOAD: libc::c_long = 5;
    let attr = [0u8; 128];
    // SAFETY: attr is readable for the size passed.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, attr.as_ptr(), attr.len()) };
    Outcome::from_ret(ret, "bpf(BPF_PROG_LOAD)")
}

/// Opens a software CPU clock perf event on this process.
pub fn perf_event_open(_: &Args) -> Outcome {
    // struct perf_event_attr: type (u32) = PERF_TYPE_SOFTWARE (1), size (u32), config (u64) =
    // PERF_COUNT_SW_CPU_CLOCK (0), then zeroes.
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&1u32.to_ne_bytes());
    attr[4..8].copy_from_slice(&128u32.to_ne_bytes());
    // SAFETY: attr is a readable perf_event_attr of the size it declares.
    let ret = unsafe { libc::syscall(libc::SYS_perf_event_open, attr.as_ptr(), 0, -1, -1, 0) };
    close_if_fd(ret);
    Outcome::from_ret(ret, "perf_event_open(PERF_TYPE_SOFTWARE)")
}

/// Calls `userfaultfd(O_CLOEXEC)`.
pub fn userfaultfd(_: &Args) -> Outcome {
    // SAFETY: userfaultfd takes a flag word.
    let ret = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) };
    close_if_fd(ret);
    Outcome::from_ret(ret, "userfaultfd")
}

/// Calls `io_uring_setup(8, params)` with zeroed parameters.
pub fn io_uring_setup(_: &Args) -> Outcome {
    let mut params = [0u8; 120];
    // SAFETY: params is writable for the size of struct io_uring_params (120 bytes).
    let ret = unsafe { libc::syscall(libc::SYS_io_uring_setup, 8, params.as_mut_ptr()) };
    close_if_fd(ret);
    Outcome::from_ret(ret, "io_uring_setup(8)")
}

/// Calls `personality(READ_IMPLIES_EXEC)`, which would make every readable mapping executable.
pub fn personality(_: &Args) -> Outcome {
    // SAFETY: personality takes a flag word. A successful change is reverted right away.
    let ret = unsafe { libc::personality(READ_IMPLIES_EXEC) };
    if ret >= 0 {
        // SAFETY: as above.
        unsafe { libc::personality(0) };
    }
    Outcome::from_ret(ret.into(), "personality(READ_IMPLIES_EXEC)")
}

/// Calls `ioctl(fd, TIOCSTI, "X")`, with bit 32 of the request set when `high_bit` is 1. With
/// `path` set, the attempt opens that path (such as /dev/tty) and uses its descriptor.
pub fn tiocsti(args: &Args) -> Outcome {
    let mut request = libc::TIOCSTI as libc::c_ulong;
    if args.int("high_bit", 0) == 1 {
        request |= 1 << 32;
    }
    terminal_ioctl(args, request, b"X".as_ptr().cast_mut().cast(), "TIOCSTI")
}

/// Calls `ioctl(fd, TIOCLINUX, {TIOCL_PASTESEL})`, which pastes the console selection.
pub fn tioclinux(args: &Args) -> Outcome {
    let mut subcode = [3u8; 1];
    terminal_ioctl(
        args,
        libc::TIOCLINUX as libc::c_ulong,
        subcode.as_mut_ptr().cast(),
        "TIOCLINUX",
    )
}

fn terminal_ioctl(
    args: &Args,
    request: libc::c_ulong,
    argument: *mut libc::c_void,
    name: &str,
) -> Outcome {
    let path = args.str("path");
    let (fd, label) = if path.is_empty() {
        let fd = libc::c_int::try_from(args.int("fd", 0)).unwrap_or(-1);
        (fd, format!("fd {fd}"))
    } else {
        let c_path = c_path(&path);
        // SAFETY: c_path is a valid C string. The descriptor is closed below.
        let fd = unsafe {
            libc::open(
                c_path.as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Outcome::from_ret(fd.into(), format!("open {path}"));
        }
        (fd, path.clone())
    };
    // SAFETY: argument points to a live buffer of at least one byte, which is all TIOCSTI and
    // TIOCLINUX read.
    let ret = unsafe { libc::syscall(libc::SYS_ioctl, fd, request, argument) };
    let outcome = Outcome::from_ret(ret, format!("ioctl({label}, {name} {request:#x})"));
    if !path.is_empty() {
        // SAFETY: fd was opened above and is owned here.
        unsafe { libc::close(fd) };
    }
    outcome
}

fn close_if_fd(ret: libc::c_long) {
    if let Ok(fd) = libc::c_int::try_from(ret) {
        if fd >= 0 {
            // SAFETY: a non-negative return of these calls is a new descriptor owned here.
            unsafe { libc::close(fd) };
        }
    }
}
