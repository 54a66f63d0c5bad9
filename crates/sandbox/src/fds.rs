//! Closing every inherited file descriptor except the few a spoke keeps.
//!
//! Both functions issue raw syscalls on stack buffers and never allocate, so the launcher's cloned
//! child may call them between clone and exec.

use std::os::fd::RawFd;

use nix::errno::Errno;

/// The largest number of descriptors a caller may keep.
pub const MAX_KEPT_FDS: usize = 16;

/// Directory listing this process's open descriptors, read by the fallback.
const PROC_SELF_FD: &std::ffi::CStr = c"/proc/self/fd";

/// Errors from closing descriptors.
#[derive(Debug, thiserror::Error)]
pub enum FdError {
    #[error("keep list has {count} descriptors; at most {MAX_KEPT_FDS} are supported")]
    TooManyKept { count: usize },
    #[error("keep list contains the negative descriptor {fd}")]
    NegativeFd { fd: RawFd },
    #[error("close descriptors {first} to {last}: {errno}")]
    CloseRange { first: u32, last: u32, errno: Errno },
    #[error("open {PROC_SELF_FD:?} to list open descriptors: {errno}")]
    OpenFdDirectory { errno: Errno },
    #[error("read {PROC_SELF_FD:?}: {errno}")]
    ReadFdDirectory { errno: Errno },
}

/// Closes every descriptor of this process except those in `keep`.
///
/// Uses close_range(2) and falls back to [`close_other_fds_by_walk`] on kernels without it
/// (before 5.9), where it fails with ENOSYS.
pub fn close_other_fds(keep: &[RawFd]) -> Result<(), FdError> {
    let (kept, count) = sorted_keep_list(keep)?;
    let mut first: u32 = 0;
    for &fd in &kept[..count] {
        let fd = fd.unsigned_abs();
        if fd > first {
            match close_range(first, fd - 1) {
                Ok(()) => {}
                Err(Errno::ENOSYS) => return close_other_fds_by_walk(keep),
                Err(errno) => {
                    return Err(FdError::CloseRange {
                        first,
                        last: fd - 1,
                        errno,
                    })
                }
            }
        }
        first = fd.saturating_add(1);
    }
    match close_range(first, u32::MAX) {
        Ok(()) => Ok(()),
        Err(Errno::ENOSYS) => close_other_fds_by_walk(keep),
        Err(errno) => Err(FdError::CloseRange {
            first,
            last: u32::MAX,
            errno,
        }),
    }
}

/// Closes every descriptor except those in `keep` by listing /proc/self/fd with getdents64. This is
/// the fallback of [`close_other_fds`] and needs a mounted procfs.
pub fn close_other_fds_by_walk(keep: &[RawFd]) -> Result<(), FdError> {
    let (kept, count) = sorted_keep_list(keep)?;
    let kept = &kept[..count];
    // SAFETY: the path is NUL-terminated.
    let directory = unsafe {
        libc::open(
            PROC_SELF_FD.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    let directory = Errno::result(directory).map_err(|errno| FdError::OpenFdDirectory { errno })?;

    let result = close_listed(directory, kept);
    // SAFETY: `directory` is the descriptor opened above and is closed once.
    unsafe { libc::close(directory) };
    result
}

/// Reads the entries of the open /proc/self/fd `directory` and closes every listed descriptor that
/// is neither kept nor `directory` itself.
fn close_listed(directory: RawFd, kept: &[RawFd]) -> Result<(), FdError> {
    // Aligned for the u64 and i64 fields at the start of each linux_dirent64 record.
    #[repr(C, align(8))]
    struct Buffer([u8; 4096]);
    let mut buffer = Buffer([0; 4096]);
    loop {
        // SAFETY: `buffer` is writable for its full length.
        let read = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                directory,
                buffer.0.as_mut_ptr(),
                buffer.0.len(),
            )
        };
        let read = Errno::result(read).map_err(|errno| FdError::ReadFdDirectory { errno })?;
        if read == 0 {
            return Ok(());
        }
        let filled = usize::try_from(read).map_or(&[][..], |length| &buffer.0[..length]);
        for fd in dirent_fds(filled) {
            if fd != directory && kept.binary_search(&fd).is_err() {
                // SAFETY: `fd` is an open descriptor of this process that nothing here still uses.
                unsafe { libc::close(fd) };
            }
        }
    }
}

/// Parses the names of linux_dirent64 records as descriptor numbers, skipping "." and "..".
fn dirent_fds(records: &[u8]) -> impl Iterator<Item = RawFd> + '_ {
    // linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, then the NUL-terminated name.
    const NAME_OFFSET: usize = 19;
    let mut offset = 0;
    std::iter::from_fn(move || loop {
        let header = records.get(offset..offset + NAME_OFFSET)?;
        let length = usize::from(u16::from_ne_bytes([header[16], header[17]]));
        let name = records.get(offset + NAME_OFFSET..offset + length)?;
        offset += length.max(NAME_OFFSET);
        if let Some(fd) = parse_fd(name) {
            return Some(fd);
        }
    })
}

/// Parses a NUL-terminated decimal name. Returns `None` for anything else.
fn parse_fd(name: &[u8]) -> Option<RawFd> {
    let digits = name.split(|&b| b == 0).next()?;
    if digits.is_empty() {
        return None;
    }
    let mut value: RawFd = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value
            .checked_mul(10)?
            .checked_add(RawFd::from(digit - b'0'))?;
    }
    Some(value)
}

/// Copies `keep` into a sorted, deduplicated array without allocating.
fn sorted_keep_list(keep: &[RawFd]) -> Result<([RawFd; MAX_KEPT_FDS], usize), FdError> {
    if keep.len() > MAX_KEPT_FDS {
        return Err(FdError::TooManyKept { count: keep.len() });
    }
    if let Some(&fd) = keep.iter().find(|&&fd| fd < 0) {
        return Err(FdError::NegativeFd { fd });
    }
    let mut kept = [0; MAX_KEPT_FDS];
    kept[..keep.len()].copy_from_slice(keep);
    let sorted = &mut kept[..keep.len()];
    sorted.sort_unstable();
    let mut count = 0;
    for i in 0..sorted.len() {
        if count == 0 || sorted[i] != sorted[count - 1] {
            sorted[count] = sorted[i];
            count += 1;
        }
    }
    Ok((kept, count))
}

fn close_range(first: u32, last: u32) -> Result<(), Errno> {
    // SAFETY: close_range takes integer arguments only. The caller owns every descriptor in the
    // range and none of them is used afterwards.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    Errno::result(rc).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_list_sorted_and_deduplicated() {
        let (kept, count) = sorted_keep_list(&[9, 3, 0, 3, 2]).expect("valid keep list");
        assert_eq!(&kept[..count], &[0, 2, 3, 9]);
    }

    #[test]
    fn keep_list_rejects_negative_fd() {
        let err = sorted_keep_list(&[1, -1]).expect_err("negative fd must be rejected");
        assert!(matches!(err, FdError::NegativeFd { fd: -1 }), "{err}");
    }

    #[test]
    fn keep_list_rejects_too_many() {
        let keep: Vec<RawFd> = (0..=16).collect();
        let err = sorted_keep_list(&keep).expect_err("17 fds must be rejected");
        assert!(matches!(err, FdError::TooManyKept { count: 17 }), "{err}");
    }

    #[test]
    fn parse_fd_accepts_digits_only() {
        assert_eq!(parse_fd(b"17\0"), Some(17));
        assert_eq!(parse_fd(b"0\0\0\0"), Some(0));
        assert_eq!(parse_fd(b".\0"), None);
        assert_eq!(parse_fd(b"..\0"), None);
        assert_eq!(parse_fd(b"\0"), None);
        assert_eq!(parse_fd(b"99999999999\0"), None);
    }

    #[test]
    fn dirent_fds_parses_records() {
        let mut records = Vec::new();
        for name in [&b"."[..], b"..", b"0", b"12"] {
            let length = (19 + name.len() + 1).next_multiple_of(8);
            let mut record = vec![0u8; length];
            record[16..18].copy_from_slice(&u16::try_from(length).expect("small").to_ne_bytes());
            record[19..19 + name.len()].copy_from_slice(name);
            records.extend_from_slice(&record);
        }
        let fds: Vec<RawFd> = dirent_fds(&records).collect();
        assert_eq!(fds, vec![0, 12]);
    }
}

/// Writes all of `bytes` to `fd` with plain write calls, retrying on EINTR. It allocates nothing, so
/// the launcher's child can use it between clone and exec.
pub(crate) fn write_all(fd: RawFd, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid buffer of the given length.
        let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        match Errno::result(written) {
            Ok(count) => bytes = &bytes[count.unsigned_abs()..],
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}
