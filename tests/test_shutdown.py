"""SIGTERM stops every spoke quickly and bulkheadd exits 0. Readiness and shutdown go to NOTIFY_SOCKET."""

import signal
import socket
import time

import manifests
from harness import wait_until

EXAMPLES = ("notes", "calendar", "mail")


def wait_for_state(listener: socket.socket, state: str, timeout: float) -> list[str]:
    """Collect notification lines until one equals state or timeout seconds pass, and return them all."""
    deadline = time.monotonic() + timeout
    received = []
    while state not in received:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        listener.settimeout(remaining)
        try:
            received += listener.recv(4096).decode().splitlines()
        except socket.timeout:
            break
    return received


def test_sigterm_stops_all_spokes(hub):
    bulkhead = hub({name: manifests.example(name) for name in EXAMPLES})
    for name in EXAMPLES:
        bulkhead.warm(name)
    processes = set(bulkhead.seen)
    assert len([process for process in processes if process.role.endswith(" pid")]) == 3
    assert len([process for process in processes if process.role.endswith(" app_pid")]) == 3

    started = time.monotonic()
    code = bulkhead.terminate()
    wait_until(lambda: not any(process.alive() for process in processes), 2.0)
    elapsed = time.monotonic() - started

    left = sorted(f"{process.role} {process.pid}" for process in processes if process.alive())
    assert left == [], f"still running {elapsed:.1f} s after SIGTERM"
    assert elapsed <= 2.0
    assert code == 0


def test_notify_socket_ready_and_stopping(hub):
    bulkhead = hub({"notes": manifests.example("notes")}, start=False)
    path = bulkhead.root / "notify.sock"

    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        bulkhead.extra_env["NOTIFY_SOCKET"] = str(path)
        bulkhead.start(wait_for_socket=False)

        ready = wait_for_state(listener, "READY=1", 20.0)
        assert "READY=1" in ready, f"no READY=1 within 20 s, received {ready}"
        assert bulkhead.socket_accepts(), "READY=1 arrived before the hub accepted connections"
        assert [app["name"] for app in bulkhead.cli_json("apps", "list")["apps"]] == ["notes"]

        bulkhead.process.send_signal(signal.SIGTERM)
        stopping = wait_for_state(listener, "STOPPING=1", 10.0)
        assert "STOPPING=1" in stopping, f"no STOPPING=1 after SIGTERM, received {stopping}"
        assert bulkhead.process.wait(15) == 0
