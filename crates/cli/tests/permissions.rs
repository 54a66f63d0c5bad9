//! End-to-end test of the "permission denied" message, running the client as an unprivileged user
//! against a socket of mode 0660 that it may not open.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{exit_code, stderr, MockHub};

/// The uid and gid of `nobody` on Debian.
const NOBODY: u32 = 65534;

#[tokio::test]
async fn permission_denied_names_mode_and_group() {
    // SAFETY: geteuid has no preconditions and only reads the calling process's credentials.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: switching to uid {NOBODY} needs root");
        return;
    }
    let hub = MockHub::start();
    std::fs::set_permissions(hub.dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("open temp dir to others");
    std::fs::set_permissions(&hub.socket, std::fs::Permissions::from_mode(0o660))
        .expect("chmod socket");

    // The checkout may sit in a folder that uid NOBODY cannot enter (a 0700 temporary folder, say),
    // so the client runs from a copy in the world-readable temp dir.
    let client = hub.dir.path().join("bulkhead");
    std::fs::copy(env!("CARGO_BIN_EXE_bulkhead"), &client).expect("copy the client binary");
    std::fs::set_permissions(&client, std::fs::Permissions::from_mode(0o755)).expect("chmod client");

    let mut command = tokio::process::Command::new(&client);
    command
        .env_remove("BULKHEAD_SOCKET")
        .arg("--socket")
        .arg(&hub.socket)
        .arg("status")
        .uid(NOBODY)
        .gid(NOBODY);
    let output = common::run_command(command, None).await;

    assert_eq!(exit_code(&output), 1, "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("hub.sock: permission denied; the socket is mode 0660 with group root"),
        "{message}"
    );
    assert!(message.contains("usermod -aG root USER"), "{message}");
    assert_eq!(message.lines().count(), 1, "{message}");
}
