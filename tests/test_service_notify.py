"""The sd_notify protocol without systemd: a datagram socket set as NOTIFY_SOCKET receives the hub's
STATUS lines, watchdog pings, reload messages, and the hub accepts a listener passed by LISTEN_FDS."""

import os
import signal
import socket
import subprocess
import time

import manifests
from harness import RELEASE


class NotifyListener:
    """A datagram socket bound at path that keeps every message the hub sent, one list of lines each."""

    def __init__(self, path):
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        self.messages: list[list[str]] = []

    def close(self):
        self.socket.close()

    def wait_for(self, predicate, timeout: float) -> list[str] | None:
        """Return the first new message whose lines satisfy predicate, or None after timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.socket.settimeout(remaining)
            try:
                lines = self.socket.recv(4096).decode().splitlines()
            except socket.timeout:
                return None
            self.messages.append(lines)
            if predicate(lines):
                return lines

    def collect(self, seconds: float) -> list[list[str]]:
        """Return every message received during the next seconds."""
        received = []
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            self.socket.settimeout(remaining)
            try:
                received.append(self.socket.recv(4096).decode().splitlines())
            except socket.timeout:
                break
        self.messages.extend(received)
        return received


def start_with_notify(hub, apps: dict[str, str], env: dict[str, str] | None = None):
    bulkhead = hub(apps, start=False)
    listener = NotifyListener(bulkhead.root / "notify.sock")
    bulkhead.extra_env["NOTIFY_SOCKET"] = str(listener.path)
    bulkhead.extra_env.update(env or {})
    bulkhead.start(wait_for_socket=False)
    ready = listener.wait_for(lambda lines: "READY=1" in lines, 20.0)
    assert ready is not None, f"no READY=1 within 20 s, received {listener.messages}\n{bulkhead.log_tail()}"
    return bulkhead, listener, ready


def test_ready_carries_status_counts(hub):
    bulkhead, listener, ready = start_with_notify(hub, {"notes": manifests.example("notes")})
    try:
        assert "STATUS=apps: 1, spokes: 0, pending approvals: 0" in ready

        bulkhead.warm("notes")
        expected = "STATUS=apps: 1, spokes: 1, pending approvals: 0"
        status = listener.wait_for(lambda lines: expected in lines, 15.0)
        assert status is not None, f"no {expected} within 15 s of the spoke start, received {listener.messages}"
    finally:
        listener.close()


def test_watchdog_pings_at_half_interval(hub):
    # WATCHDOG_USEC of 2 s means a ping every second. WATCHDOG_PID is left unset, which sd_notify
    # treats as "this process".
    bulkhead, listener, _ = start_with_notify(hub, {"notes": manifests.example("notes")}, {"WATCHDOG_USEC": "2000000"})
    try:
        received = listener.collect(4.5)
        pings = [lines for lines in received if lines == ["WATCHDOG=1"]]
        assert len(pings) >= 3, f"expected a ping about every second for 4.5 s, received {received}"
        assert len(pings) <= 6, f"pings came faster than half of WATCHDOG_USEC: {received}"
    finally:
        listener.close()


def test_hang_switch_stops_pings(hub):
    env = {"WATCHDOG_USEC": "1000000", "BULKHEAD_TEST_HANG_AFTER_READY": "1"}
    bulkhead, listener, _ = start_with_notify(hub, {"notes": manifests.example("notes")}, env)
    try:
        received = listener.collect(2.0)
        assert ["WATCHDOG=1"] not in received, f"the hang switch did not stop the pings: {received}"
        assert bulkhead.running()
    finally:
        listener.close()


def test_reload_sends_reloading_then_ready(hub):
    bulkhead, listener, _ = start_with_notify(hub, {"notes": manifests.example("notes")})
    try:
        bulkhead.write_manifest("calendar", manifests.example("calendar"))
        before_ns = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        bulkhead.process.send_signal(signal.SIGHUP)

        reloading = listener.wait_for(lambda lines: "RELOADING=1" in lines, 10.0)
        assert reloading is not None, f"no RELOADING=1 after SIGHUP, received {listener.messages}"
        stamps = [line.removeprefix("MONOTONIC_USEC=") for line in reloading if line.startswith("MONOTONIC_USEC=")]
        assert len(stamps) == 1, f"RELOADING=1 must carry one MONOTONIC_USEC, received {reloading}"
        assert int(stamps[0]) >= before_ns // 1000

        ready = listener.wait_for(lambda lines: "READY=1" in lines, 10.0)
        assert ready is not None, f"no READY=1 after the reload, received {listener.messages}"
        assert "STATUS=apps: 2, spokes: 0, pending approvals: 0" in ready
        names = [app["name"] for app in bulkhead.cli_json("apps", "list")["apps"]]
        assert names == ["calendar", "notes"]
    finally:
        listener.close()


def test_socket_activation_uses_passed_listener(hub):
    bulkhead = hub({"notes": manifests.example("notes")}, start=False)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(bulkhead.socket))
    listener.listen(16)
    # Clients can connect before bulkheadd runs: the kernel queues them on the passed socket.
    early = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    early.connect(str(bulkhead.socket))
    early.close()

    env = {key: value for key, value in os.environ.items() if key != "NOTIFY_SOCKET"}
    env["LISTEN_FDS"] = "1"
    passed = listener.fileno()
    with open(bulkhead.log_path, "ab") as log:
        # bash sets LISTEN_PID to its own pid and then execs bulkheadd, which keeps that pid.
        bulkhead.process = subprocess.Popen(
            ["bash", "-c", 'export LISTEN_PID=$$; exec "$@"', "bash", str(RELEASE / "bulkheadd"), "--config", str(bulkhead.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            pass_fds=(3,),
            preexec_fn=lambda: os.dup2(passed, 3),
        )
    listener.close()
    try:
        names = [app["name"] for app in bulkhead.cli_json("apps", "list")["apps"]]
        assert names == ["notes"]
        assert "serving on the socket passed by the service manager" in bulkhead.log_path.read_text()
        assert bulkhead.call_text("notes", "list_notes") is not None
    finally:
        code = bulkhead.terminate()
    assert code == 0
    assert bulkhead.socket.exists(), "the socket unit owns a passed socket, so bulkheadd must leave it"
