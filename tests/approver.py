"""`bulkhead approvals` run in the background as a live approver, for the tests that decide flows."""

from __future__ import annotations

import json
import queue
import subprocess
import threading

from harness import RELEASE

EVENT_TIMEOUT = 30.0


class Approver:
    """`bulkhead approvals` running in the background. Threads read its stdout lines and stderr
    lines into queues, and `stop` ends the process."""

    def __init__(self, bulkhead, json_lines: bool = True):
        command = [str(RELEASE / "bulkhead"), "--socket", str(bulkhead.socket), "approvals"]
        if json_lines:
            command.append("--json")
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.stdout: queue.Queue[str] = queue.Queue()
        self.stderr: queue.Queue[str] = queue.Queue()
        for stream, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr)):
            threading.Thread(target=self._read, args=(stream, lines), daemon=True).start()
        # The CLI writes this line once the hub has registered the approver.
        self.next_line(self.stderr, lambda line: line.startswith("watching for flows"))

    @staticmethod
    def _read(stream, lines: queue.Queue) -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))

    def next_line(self, lines: queue.Queue, matches) -> str:
        """Return the next line for which matches(line) is true, skipping the others."""
        while True:
            try:
                line = lines.get(timeout=EVENT_TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"no expected line from `bulkhead approvals` within {EVENT_TIMEOUT} s") from None
            if matches(line):
                return line

    def next_event(self, event: str) -> dict:
        """Return the next JSON Lines event of the given kind, "request" or "settled"."""
        line = self.next_line(self.stdout, lambda line: json.loads(line)["event"] == event)
        return json.loads(line)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=10)

    def __enter__(self) -> Approver:
        return self

    def __exit__(self, *_) -> None:
        self.stop()
