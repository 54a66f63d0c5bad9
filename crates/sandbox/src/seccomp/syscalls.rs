//! The syscall tables behind the seccomp policy, as plain data.
//!
//! Numbers come from `libc::SYS_*` for the architecture the crate is built for. Legacy syscalls that
//! only x86_64 has (`open`, `stat`, `fork`, `pipe`, ...) are listed under `cfg(target_arch)`.

/// One syscall of a table: its name without the `SYS_` prefix and its number on the build target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syscall {
    /// The `libc` constant name, e.g. `SYS_openat`.
    constant: &'static str,
    /// The syscall number for the architecture this crate was built for.
    pub number: i64,
}

impl Syscall {
    /// Returns the kernel's name of the syscall, e.g. `openat`.
    pub fn name(&self) -> &'static str {
        self.constant.strip_prefix("SYS_").unwrap_or(self.constant)
    }
}

/// Builds a `&[Syscall]` from `libc::SYS_*` names, so a name can never disagree with its number.
macro_rules! syscall_table {
    ($($(#[$attr:meta])* $constant:ident),* $(,)?) => {
        &[$(
            $(#[$attr])*
            Syscall { constant: stringify!($constant), number: libc::$constant },
        )*]
    };
}

/// Syscalls that the allowlist filter lets through.
///
/// The set covers what Rust and C programs linked against glibc, CPython 3.11 (threads, asyncio,
/// subprocesses), Node 20 (V8 JIT, libuv threads, epoll), `/bin/sh` and coreutils call. `clone3` is
/// missing on purpose: it returns ENOSYS, so glibc falls back to `clone`, whose flags the deny filter
/// can inspect (`clone3` passes them in memory that seccomp cannot read).
/// `clone`, `ioctl`, `personality`, `socket` and `socketpair` appear here and also get argument checks
/// in the deny filter. `prctl` and `seccomp` must stay, because the deny filter is installed after
/// this one.
#[rustfmt::skip]
static ALLOWED: &[Syscall] = syscall_table![
    // File descriptors and file contents.
    SYS_read, SYS_write, SYS_pread64, SYS_pwrite64, SYS_readv, SYS_writev, SYS_preadv, SYS_pwritev,
    SYS_preadv2, SYS_pwritev2, SYS_openat, SYS_openat2, SYS_close, SYS_close_range, SYS_lseek,
    SYS_dup, SYS_dup3, SYS_pipe2, SYS_fcntl, SYS_flock, SYS_ioctl, SYS_fsync, SYS_fdatasync,
    SYS_sync, SYS_syncfs, SYS_sync_file_range, SYS_truncate, SYS_ftruncate, SYS_fallocate,
    SYS_fadvise64, SYS_readahead, SYS_sendfile, SYS_splice, SYS_tee, SYS_vmsplice,
    SYS_copy_file_range, SYS_memfd_create,
    #[cfg(target_arch = "x86_64")] SYS_open,
    #[cfg(target_arch = "x86_64")] SYS_creat,
    #[cfg(target_arch = "x86_64")] SYS_dup2,
    #[cfg(target_arch = "x86_64")] SYS_pipe,
    // File metadata and directories.
    SYS_fstat, SYS_newfstatat, SYS_statx, SYS_statfs, SYS_fstatfs, SYS_faccessat, SYS_faccessat2,
    SYS_getdents64, SYS_getcwd, SYS_chdir, SYS_fchdir, SYS_renameat, SYS_renameat2, SYS_mkdirat,
    SYS_mknodat, SYS_unlinkat, SYS_linkat, SYS_symlinkat, SYS_readlinkat, SYS_fchmod, SYS_fchmodat,
    SYS_fchown, SYS_fchownat, SYS_umask, SYS_utimensat, SYS_getxattr, SYS_lgetxattr, SYS_fgetxattr,
    SYS_listxattr, SYS_llistxattr, SYS_flistxattr, SYS_setxattr, SYS_lsetxattr, SYS_fsetxattr,
    SYS_removexattr, SYS_lremovexattr, SYS_fremovexattr, SYS_inotify_init1, SYS_inotify_add_watch,
    SYS_inotify_rm_watch,
    #[cfg(target_arch = "x86_64")] SYS_stat,
    #[cfg(target_arch = "x86_64")] SYS_lstat,
    #[cfg(target_arch = "x86_64")] SYS_access,
    #[cfg(target_arch = "x86_64")] SYS_getdents,
    #[cfg(target_arch = "x86_64")] SYS_rename,
    #[cfg(target_arch = "x86_64")] SYS_mkdir,
    #[cfg(target_arch = "x86_64")] SYS_rmdir,
    #[cfg(target_arch = "x86_64")] SYS_mknod,
    #[cfg(target_arch = "x86_64")] SYS_link,
    #[cfg(target_arch = "x86_64")] SYS_unlink,
    #[cfg(target_arch = "x86_64")] SYS_symlink,
    #[cfg(target_arch = "x86_64")] SYS_readlink,
    #[cfg(target_arch = "x86_64")] SYS_chmod,
    // `libc` defines `SYS_fchmodat2` (Linux 6.6) only for x86_64 among the two supported targets.
    #[cfg(target_arch = "x86_64")] SYS_fchmodat2,
    #[cfg(target_arch = "x86_64")] SYS_chown,
    #[cfg(target_arch = "x86_64")] SYS_lchown,
    #[cfg(target_arch = "x86_64")] SYS_utime,
    #[cfg(target_arch = "x86_64")] SYS_utimes,
    #[cfg(target_arch = "x86_64")] SYS_futimesat,
    #[cfg(target_arch = "x86_64")] SYS_inotify_init,
    // Memory.
    SYS_mmap, SYS_munmap, SYS_mprotect, SYS_mremap, SYS_madvise, SYS_brk, SYS_msync, SYS_mincore,
    SYS_mlock, SYS_mlock2, SYS_munlock, SYS_mlockall, SYS_munlockall, SYS_membarrier,
    SYS_pkey_alloc, SYS_pkey_free, SYS_pkey_mprotect, SYS_get_mempolicy, SYS_set_mempolicy,
    SYS_mbind,
    // Processes and threads.
    SYS_clone, SYS_execve, SYS_execveat, SYS_exit, SYS_exit_group, SYS_wait4, SYS_waitid, SYS_kill,
    SYS_tkill, SYS_tgkill, SYS_pidfd_open, SYS_pidfd_send_signal, SYS_set_tid_address,
    SYS_set_robust_list, SYS_get_robust_list, SYS_futex, SYS_futex_waitv, SYS_rseq,
    SYS_restart_syscall, SYS_prctl, SYS_seccomp, SYS_personality, SYS_capget, SYS_capset,
    SYS_getpid, SYS_gettid, SYS_getppid, SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid,
    SYS_getgroups, SYS_getresuid, SYS_getresgid, SYS_setuid, SYS_setgid, SYS_setreuid,
    SYS_setregid, SYS_setresuid, SYS_setresgid, SYS_setgroups, SYS_setfsuid, SYS_setfsgid,
    SYS_setsid, SYS_setpgid, SYS_getpgid, SYS_getsid, SYS_getrlimit, SYS_setrlimit, SYS_prlimit64,
    SYS_getrusage, SYS_getpriority, SYS_setpriority, SYS_sched_yield, SYS_sched_getaffinity,
    SYS_sched_setaffinity, SYS_sched_getparam, SYS_sched_getscheduler, SYS_sched_getattr,
    SYS_sched_get_priority_max, SYS_sched_get_priority_min, SYS_sched_rr_get_interval, SYS_getcpu,
    #[cfg(target_arch = "x86_64")] SYS_fork,
    #[cfg(target_arch = "x86_64")] SYS_vfork,
    #[cfg(target_arch = "x86_64")] SYS_arch_prctl,
    #[cfg(target_arch = "x86_64")] SYS_getpgrp,
    // Signals.
    SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigreturn, SYS_rt_sigsuspend, SYS_rt_sigpending,
    SYS_rt_sigtimedwait, SYS_rt_sigqueueinfo, SYS_rt_tgsigqueueinfo, SYS_sigaltstack,
    SYS_signalfd4,
    #[cfg(target_arch = "x86_64")] SYS_signalfd,
    #[cfg(target_arch = "x86_64")] SYS_pause,
    #[cfg(target_arch = "x86_64")] SYS_alarm,
    // Time and timers.
    SYS_nanosleep, SYS_clock_nanosleep, SYS_clock_gettime, SYS_clock_getres, SYS_gettimeofday,
    SYS_getitimer, SYS_setitimer, SYS_timer_create, SYS_timer_settime, SYS_timer_gettime,
    SYS_timer_getoverrun, SYS_timer_delete, SYS_timerfd_create, SYS_timerfd_settime,
    SYS_timerfd_gettime, SYS_times,
    #[cfg(target_arch = "x86_64")] SYS_time,
    // Polling and event descriptors.
    SYS_pselect6, SYS_ppoll, SYS_epoll_create1, SYS_epoll_ctl, SYS_epoll_pwait, SYS_epoll_pwait2,
    SYS_eventfd2,
    #[cfg(target_arch = "x86_64")] SYS_select,
    #[cfg(target_arch = "x86_64")] SYS_poll,
    #[cfg(target_arch = "x86_64")] SYS_epoll_create,
    #[cfg(target_arch = "x86_64")] SYS_epoll_wait,
    #[cfg(target_arch = "x86_64")] SYS_eventfd,
    // Sockets. The deny filter restricts the address family of `socket` and `socketpair`.
    SYS_socket, SYS_socketpair, SYS_connect, SYS_accept, SYS_accept4, SYS_bind, SYS_listen,
    SYS_getsockname, SYS_getpeername, SYS_sendto, SYS_recvfrom, SYS_sendmsg, SYS_recvmsg,
    SYS_sendmmsg, SYS_recvmmsg, SYS_shutdown, SYS_setsockopt, SYS_getsockopt,
    // System V IPC, which stays inside the spoke's own IPC namespace.
    SYS_shmget, SYS_shmat, SYS_shmdt, SYS_shmctl, SYS_semget, SYS_semop, SYS_semtimedop,
    SYS_semctl, SYS_msgget, SYS_msgsnd, SYS_msgrcv, SYS_msgctl,
    // System information and randomness.
    SYS_uname, SYS_sysinfo, SYS_getrandom,
];

/// Syscalls for which the deny filter returns EPERM whatever their arguments.
///
/// None of them is in [`ALLOWED`]. Without the deny filter they would get ENOSYS, which some
/// programs read as "old kernel" and work around. EPERM states that the sandbox forbids them.
#[rustfmt::skip]
static DENIED: &[Syscall] = syscall_table![
    // Reading or changing other processes.
    SYS_ptrace, SYS_process_vm_readv, SYS_process_vm_writev, SYS_kcmp, SYS_pidfd_getfd,
    // Kernel keyrings, BPF, perf and userfaultfd.
    SYS_keyctl, SYS_add_key, SYS_request_key, SYS_bpf, SYS_perf_event_open, SYS_userfaultfd,
    // io_uring, whose operations seccomp cannot see.
    SYS_io_uring_setup, SYS_io_uring_enter, SYS_io_uring_register,
    // Mounts, the new mount API and namespaces.
    SYS_mount, SYS_umount2, SYS_pivot_root, SYS_chroot, SYS_move_mount, SYS_open_tree, SYS_fsopen,
    SYS_fsconfig, SYS_fsmount, SYS_fspick, SYS_mount_setattr, SYS_unshare, SYS_setns,
    // Kernel images, modules and power.
    SYS_kexec_load, SYS_kexec_file_load, SYS_init_module, SYS_finit_module, SYS_delete_module,
    SYS_reboot,
    // Host-wide administration.
    SYS_swapon, SYS_swapoff, SYS_acct, SYS_quotactl, SYS_quotactl_fd, SYS_syslog, SYS_vhangup,
    SYS_nfsservctl, SYS_lookup_dcookie,
    // Setting clocks.
    SYS_settimeofday, SYS_clock_settime, SYS_clock_adjtime, SYS_adjtimex,
    // File handles, which open files by inode number and bypass path checks.
    SYS_open_by_handle_at, SYS_name_to_handle_at,
    #[cfg(target_arch = "x86_64")] SYS_iopl,
    #[cfg(target_arch = "x86_64")] SYS_ioperm,
    #[cfg(target_arch = "x86_64")] SYS_uselib,
    #[cfg(target_arch = "x86_64")] SYS_ustat,
    #[cfg(target_arch = "x86_64")] SYS_sysfs,
    #[cfg(target_arch = "x86_64")] SYS__sysctl,
];

/// Returns the syscalls that the allowlist filter lets through, in table order.
pub fn allowed_syscalls() -> &'static [Syscall] {
    ALLOWED
}

/// Returns the syscalls for which the deny filter returns EPERM regardless of their arguments.
pub fn denied_syscalls() -> &'static [Syscall] {
    DENIED
}
