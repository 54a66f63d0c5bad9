//! Linux isolation primitives for bulkhead spokes.
//!
//! This crate knows nothing about gRPC or apps. It turns plain data (a [`launch::LaunchSpec`], a
//! [`seccomp::SeccompPolicy`], [`cgroup::Limits`]) into kernel state:
//!
//! - `launch`: the single-threaded launcher that clones the spoke into new user, mount, PID, network,
//!   IPC, UTS and cgroup namespaces, writes its id maps and waits for it.
//! - `mounts`: the mount plan (pure data) and its application: a tmpfs root, read-only binds opened
//!   without following symlinks, a fresh /proc, a minimal /dev, then pivot_root.
//! - `privileges`: no_new_privs, capability and bounding-set drop, parent-death signal.
//! - `fds`: closing every inherited descriptor but the ones a spoke keeps.
//! - `seccomp`: the app's syscall allowlist, compiled before fork and applied right before exec.
//! - `probe`: which isolation primitives the host offers, and the check before a spoke starts.
//! - `cgroup`: per-spoke memory, pids and CPU limits on cgroup v2 or v1, and OOM accounting.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod cgroup;
pub mod fds;
pub mod launch;
pub mod mounts;
pub mod privileges;
pub mod probe;
pub mod seccomp;
