//! Filesystem attempts: reading, writing and linking paths, and using inherited descriptors.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::symlink;

use super::{c_path, Args, Outcome};

/// Largest number of bytes a read attempt returns in its detail.
const MAX_READ_BYTES: u64 = 64 * 1024;

/// Reads `path` and returns its content as the detail.
pub fn read_file(args: &Args) -> Outcome {
    let path = args.str("path");
    let mut content = Vec::new();
    match fs::File::open(&path).and_then(|file| file.take(MAX_READ_BYTES).read_to_end(&mut content))
    {
        Ok(_) => Outcome::new("ok", String::from_utf8_lossy(&content)),
        Err(error) => Outcome::error(&error, format!("open and read {path}")),
    }
}

/// Creates or truncates `path` and writes one byte to it.
pub fn write_file(args: &Args) -> Outcome {
    let path = args.str("path");
    match fs::write(&path, b"1") {
        Ok(()) => Outcome::new("ok", format!("wrote 1 byte to {path}")),
        Err(error) => Outcome::error(&error, format!("write {path}")),
    }
}

/// Lists the entry names of the directory `path`, sorted and separated by spaces.
pub fn list_dir(args: &Args) -> Outcome {
    let path = args.str("path");
    match fs::read_dir(&path) {
        Ok(entries) => {
            let mut names: Vec<String> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            Outcome::new("ok", names.join(" "))
        }
        Err(error) => Outcome::error(&error, format!("list {path}")),
    }
}

/// Plants a symlink `/state/escape-symlink` and a hardlink `/state/escape-hardlink` to `target`,
/// for the suite to follow after the spoke restarts.
pub fn plant_links(args: &Args) -> Outcome {
    let target = args.str("target");
    let symlink_path = "/state/escape-symlink";
    let hardlink_path = "/state/escape-hardlink";
    let _ = fs::remove_file(symlink_path);
    let _ = fs::remove_file(hardlink_path);

    let symlink_result = match symlink(&target, symlink_path) {
        Ok(()) => "ok".to_string(),
        Err(error) => super::errno_name(&error),
    };
    let hardlink_result = match fs::hard_link(&target, hardlink_path) {
        Ok(()) => "ok".to_string(),
        Err(error) => super::errno_name(&error),
    };
    Outcome::new(
        "ok",
        format!("symlink {symlink_result}, hardlink {hardlink_result}"),
    )
}

/// Creates a character device node for /dev/null at `path`.
pub fn mknod(args: &Args) -> Outcome {
    let path = args.str("path");
    let c_path = c_path(&path);
    // SAFETY: c_path is a valid NUL-terminated string that outlives the call.
    let ret = unsafe { libc::mknod(c_path.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    Outcome::from_ret(ret.into(), format!("mknod {path}"))
}

/// Uses descriptor `fd` as a directory (fchdir and openat of `etc/hostname` below it) and as a
/// file (read). The result is `"ok"` when any of them worked.
pub fn use_fd(args: &Args) -> Outcome {
    let Ok(fd) = libc::c_int::try_from(args.int("fd", -1)) else {
        return Outcome::new("EBADF", "fd out of range");
    };
    let mut steps = Vec::new();
    let mut any_ok = false;

    // SAFETY: fchdir only reads the descriptor number.
    let ret = unsafe { libc::fchdir(fd) };
    any_ok |= ret == 0;
    steps.push(format!("fchdir {}", step_result(ret.into())));

    let name = c_path("etc/hostname");
    // SAFETY: name is a valid C string. The returned descriptor, if any, is closed below.
    let opened = unsafe { libc::openat(fd, name.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    any_ok |= opened >= 0;
    steps.push(format!("openat {}", step_result(opened.into())));
    if opened >= 0 {
        // SAFETY: opened is a descriptor this function owns.
        unsafe { libc::close(opened) };
    }

    let mut buffer = [0u8; 256];
    // SAFETY: buffer is valid for writes of its whole length.
    let count = unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len()) };
    any_ok |= count > 0;
    let read_text = match usize::try_from(count) {
        Ok(length) => format!("ok: {}", String::from_utf8_lossy(&buffer[..length])),
        Err(_) => super::errno_name(&io::Error::last_os_error()),
    };
    steps.push(format!("read {read_text}"));

    let result = if any_ok { "ok" } else { "failed" };
    Outcome::new(result, steps.join(", "))
}

fn step_result(ret: libc::c_long) -> String {
    if ret < 0 {
        super::errno_name(&io::Error::last_os_error())
    } else {
        "ok".to_string()
    }
}

/// Lists this process's open descriptors with what each one refers to, as `N=TARGET` pairs.
pub fn list_fds(_: &Args) -> Outcome {
    let entries = match fs::read_dir("/proc/self/fd") {
        Ok(entries) => entries,
        Err(error) => return Outcome::error(&error, "list /proc/self/fd"),
    };
    let mut pairs: Vec<(u32, String)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let number = entry.file_name().to_str()?.parse().ok()?;
            let target = fs::read_link(entry.path()).ok()?;
            Some((number, target.to_string_lossy().into_owned()))
        })
        .collect();
    pairs.sort();
    let text: Vec<String> = pairs
        .iter()
        .map(|(number, target)| format!("{number}={target}"))
        .collect();
    Outcome::new("ok", text.join(" "))
}
