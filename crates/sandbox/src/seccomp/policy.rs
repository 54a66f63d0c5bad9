//! Turns the syscall tables and the argument checks into the two seccompiler filters.
//!
//! seccompiler ANDs the conditions inside one rule and ORs the rules of one syscall. A syscall that
//! is listed with no rules always takes the filter's match action.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::syscalls::{allowed_syscalls, denied_syscalls};
use super::{NetworkFamilies, SeccompError};

/// `CLONE_NEWTIME` from `<linux/sched.h>`, which the `libc` crate defines for musl only.
///
/// For `clone(2)` this bit falls inside the exit-signal byte (`CSIGNAL`, 0xff). No signal number
/// reaches 0x80 (the largest is 64), so denying the bit never blocks a valid `clone`.
const CLONE_NEWTIME: u64 = 0x80;

/// Namespace flags that `clone` may not carry: one deny rule per flag.
pub const DENIED_CLONE_FLAGS: &[(&str, u64)] = &[
    ("CLONE_NEWNS", libc::CLONE_NEWNS as u64),
    ("CLONE_NEWCGROUP", libc::CLONE_NEWCGROUP as u64),
    ("CLONE_NEWUTS", libc::CLONE_NEWUTS as u64),
    ("CLONE_NEWIPC", libc::CLONE_NEWIPC as u64),
    ("CLONE_NEWUSER", libc::CLONE_NEWUSER as u64),
    ("CLONE_NEWPID", libc::CLONE_NEWPID as u64),
    ("CLONE_NEWNET", libc::CLONE_NEWNET as u64),
    ("CLONE_NEWTIME", CLONE_NEWTIME),
];

/// `ioctl` requests that are denied: TIOCSTI pushes bytes into a terminal's input queue and
/// TIOCLINUX can read and paste the Linux console's selection.
///
/// The kernel takes the request as a 32-bit `unsigned int`, so the filter compares only the low 32
/// bits. A 64-bit compare would let `TIOCSTI | 1 << 32` through, and the kernel would run it as
/// TIOCSTI.
// libc's `Ioctl` type is `c_ulong` on glibc and `c_int` on musl, so the casts are needed on some
// targets only.
#[allow(clippy::unnecessary_cast)]
pub const DENIED_IOCTLS: &[(&str, u64)] = &[
    ("TIOCSTI", libc::TIOCSTI as u64),
    ("TIOCLINUX", libc::TIOCLINUX as u64),
];

/// `personality` values that are allowed: `PER_LINUX` (0) and 0xffffffff, which queries the
/// current persona without changing it. Every other value, `ADDR_NO_RANDOMIZE` included, gets EPERM.
pub const ALLOWED_PERSONALITIES: &[u64] = &[0, 0xffff_ffff];

/// Index of the `request` argument of `ioctl(fd, request, ...)`.
const IOCTL_REQUEST_ARG: u8 = 1;

/// Builds the allowlist: listed syscalls are allowed and every other number returns ENOSYS.
pub(super) fn allowlist_program(arch: TargetArch) -> Result<BpfProgram, SeccompError> {
    let rules: BTreeMap<i64, Vec<SeccompRule>> = allowed_syscalls()
        .iter()
        .map(|syscall| (syscall.number, Vec::new()))
        .collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::ENOSYS as u32),
        SeccompAction::Allow,
        arch,
    )
    .map_err(|source| SeccompError::BuildFilter {
        filter: "allowlist",
        source,
    })?;
    BpfProgram::try_from(filter).map_err(|source| SeccompError::CompileFilter {
        filter: "allowlist",
        source,
    })
}

/// Builds the deny filter: matching calls return EPERM and everything else passes to the allowlist.
pub(super) fn denylist_program(
    network: NetworkFamilies,
    arch: TargetArch,
) -> Result<BpfProgram, SeccompError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = denied_syscalls()
        .iter()
        .map(|syscall| (syscall.number, Vec::new()))
        .collect();
    rules.insert(libc::SYS_clone, clone_rules()?);
    rules.insert(libc::SYS_ioctl, ioctl_rules()?);
    rules.insert(libc::SYS_personality, vec![personality_rule()?]);
    rules.insert(libc::SYS_socket, vec![family_rule("socket", network)?]);
    rules.insert(
        libc::SYS_socketpair,
        vec![family_rule("socketpair", network)?],
    );

    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|source| SeccompError::BuildFilter {
        filter: "deny",
        source,
    })?;
    BpfProgram::try_from(filter).map_err(|source| SeccompError::CompileFilter {
        filter: "deny",
        source,
    })
}

/// One rule per namespace flag: `(flags & FLAG) == FLAG`.
///
/// The kernel reads only the low 32 bits of the `clone` flags, and every `CLONE_NEW*` flag lives
/// there, so a 32-bit compare checks exactly the bits the kernel uses.
fn clone_rules() -> Result<Vec<SeccompRule>, SeccompError> {
    DENIED_CLONE_FLAGS
        .iter()
        .map(|&(_, flag)| {
            let masked = SeccompCmpOp::MaskedEq(flag);
            rule("clone", vec![condition("clone", 0, masked, flag)?])
        })
        .collect()
}

fn ioctl_rules() -> Result<Vec<SeccompRule>, SeccompError> {
    DENIED_IOCTLS
        .iter()
        .map(|&(_, request)| {
            let request_is = condition("ioctl", IOCTL_REQUEST_ARG, SeccompCmpOp::Eq, request)?;
            rule("ioctl", vec![request_is])
        })
        .collect()
}

/// Builds one rule that matches when the persona differs from every allowed value.
fn personality_rule() -> Result<SeccompRule, SeccompError> {
    let conditions = ALLOWED_PERSONALITIES
        .iter()
        .map(|&persona| condition("personality", 0, SeccompCmpOp::Ne, persona))
        .collect::<Result<Vec<_>, _>>()?;
    rule("personality", conditions)
}

/// Builds one rule that matches when the address family (argument 0) differs from every allowed
/// family.
fn family_rule(
    syscall: &'static str,
    network: NetworkFamilies,
) -> Result<SeccompRule, SeccompError> {
    let conditions = network
        .allowed_families()
        .iter()
        .map(|&family| condition(syscall, 0, SeccompCmpOp::Ne, family as u64))
        .collect::<Result<Vec<_>, _>>()?;
    rule(syscall, conditions)
}

/// Builds a condition on the low 32 bits of one argument. Every argument checked here is an `int` or
/// `unsigned int` in the kernel, which ignores the upper half of the register.
fn condition(
    syscall: &'static str,
    arg_index: u8,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompCondition, SeccompError> {
    SeccompCondition::new(arg_index, SeccompCmpArgLen::Dword, op, value)
        .map_err(|source| SeccompError::BuildRule { syscall, source })
}

fn rule(
    syscall: &'static str,
    conditions: Vec<SeccompCondition>,
) -> Result<SeccompRule, SeccompError> {
    SeccompRule::new(conditions).map_err(|source| SeccompError::BuildRule { syscall, source })
}
