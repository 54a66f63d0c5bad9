"""`bulkhead logs APP [-f]` prints the app's captured stderr, and follows new lines with -f."""

import os
import signal
import subprocess
import threading

import manifests
from harness import RELEASE, wait_until

# The notes example app writes this line to its stderr each time it starts.
STARTED = "MCP session started"


def test_logs_prints_captured_stderr(hub):
    bulkhead = hub({"notes": manifests.example("notes")})
    bulkhead.warm("notes")

    def printed():
        code, out, err = bulkhead.cli("logs", "notes")
        assert code == 0, err
        return STARTED in out

    assert wait_until(printed, 10.0), bulkhead.cli("logs", "notes")


def test_logs_follow_streams_new_lines(hub):
    bulkhead = hub({"notes": manifests.example("notes")})
    first = bulkhead.warm("notes")
    follower = subprocess.Popen(
        [str(RELEASE / "bulkhead"), "--socket", str(bulkhead.socket), "logs", "notes", "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    # A thread reads the follower's output, because readline on a pipe blocks.
    reader = threading.Thread(target=lambda: seen.extend(line.rstrip("\n") for line in follower.stdout), daemon=True)
    reader.start()

    def read_until_started(count: int, timeout: float) -> bool:
        return wait_until(lambda: sum(STARTED in line for line in list(seen)) >= count, timeout)

    try:
        assert read_until_started(1, 10.0), f"the kept lines were not printed: {seen}"
        # A new spoke of the same app writes the start line again, and the follower prints it.
        os.kill(first["app_pid"], signal.SIGKILL)
        assert wait_until(lambda: bulkhead.spoke("notes")["state"] != "ready", 10.0)
        bulkhead.warm("notes")
        assert read_until_started(2, 15.0), f"the follower printed {seen}"
        assert follower.poll() is None, "logs --follow must keep running"
    finally:
        follower.terminate()
        follower.wait(10)
        reader.join(10)


def test_logs_unknown_app_fails(hub):
    bulkhead = hub({"notes": manifests.example("notes")})
    code, out, err = bulkhead.cli("logs", "nosuchapp")
    assert code != 0
    assert out == ""
    assert "nosuchapp" in err
    assert "not found" in err
