"""Running bulkheadd and the bulkhead CLI from the end-to-end tests, and reading host processes.

A Hub owns one temporary directory holding its config, socket, apps folder, state directory and
log. It records every spoke process it has seen, so that the fixture can check after shutdown that
none of them is left.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RELEASE = REPO / "target" / "release"
BUILD = REPO / "build"
BINARIES = (
    "bulkheadd",
    "bulkhead-spoke",
    "bulkhead",
    "bulkhead-app-notes",
    "bulkhead-app-calendar",
    "bulkhead-app-mail",
    "bulkhead-app-hostile",
)
UID_BASE = 2_000_000_000
SOCKET_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
# Terminal color sequences, which tracing writes even when its output is a file.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def missing_binaries() -> list[str]:
    return [name for name in BINARIES if not os.access(RELEASE / name, os.X_OK)]


def wait_until(predicate, timeout: float, interval: float = 0.05):
    """Poll predicate until it returns a truthy value or timeout seconds pass, and return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# Host processes


@dataclass(frozen=True)
class HostProcess:
    """A host process identified by pid and start time, so that a reused pid is not mistaken for it."""

    pid: int
    start_ticks: int
    role: str

    def alive(self) -> bool:
        return start_ticks(self.pid) == self.start_ticks


def start_ticks(pid: int) -> int | None:
    """Return the start time of a running process in clock ticks, or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name in field 2 may contain spaces and parentheses, so split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def host_process(pid: int, role: str) -> HostProcess | None:
    ticks = start_ticks(pid)
    return None if ticks is None else HostProcess(pid, ticks, role)


def proc_status(pid: int) -> dict[str, str]:
    """Return /proc/PID/status as a dict of field name to value."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def parent_pid(pid: int) -> int:
    """Return the parent pid of a process, or 0 if it is gone."""
    if not pid:
        return 0
    try:
        return int(proc_status(pid).get("PPid", "0"))
    except (FileNotFoundError, ProcessLookupError):
        return 0


def cgroup_dirs(pid: int) -> set[Path]:
    """Return the cgroup directories of a process, one per mounted hierarchy, or an empty set if it is gone."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return set()
    dirs = set()
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0":
            unified = Path("/sys/fs/cgroup/unified")
            mount = unified if unified.is_dir() else Path("/sys/fs/cgroup")
        else:
            mount = Path("/sys/fs/cgroup") / controllers.removeprefix("name=")
        directory = mount / path.lstrip("/")
        if directory.is_dir():
            dirs.add(directory)
    return dirs


def namespace(pid: int, kind: str) -> str:
    """Return the namespace link of a process, such as "net:[4026531840]"."""
    return os.readlink(f"/proc/{pid}/ns/{kind}")


# TOML rendering for configs and manifests


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, os.PathLike)):
        # A JSON string with only printable characters is also a valid TOML basic string.
        return json.dumps(str(value), ensure_ascii=True)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def render_toml(document: dict) -> str:
    """Render a dict of scalars, lists, tables (dicts) and arrays of tables (lists of dicts)."""
    lines = []
    tables = []
    for key, value in document.items():
        if isinstance(value, dict):
            tables.append((f"[{key}]", value))
        elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            tables.extend((f"[[{key}]]", item) for item in value)
        else:
            lines.append(f"{key} = {toml_value(value)}")
    for header, table in tables:
        lines.append("")
        lines.append(header)
        lines.extend(f"{key} = {toml_value(value)}" for key, value in table.items())
    return "\n".join(lines) + "\n"


# The hub


class HubError(AssertionError):
    pass


class Hub:
    """One bulkheadd process with its own temporary directory."""

    def __init__(self, manifests: dict[str, str], env: dict[str, str] | None = None):
        self.root = Path(tempfile.mkdtemp(prefix="bh-", dir="/tmp"))
        # Apps run as an unprivileged host uid and must be able to enter what the tests bind.
        self.root.chmod(0o755)
        self.socket = self.root / "hub.sock"
        self.apps_dir = self.root / "apps.d"
        self.state_dir = self.root / "state"
        self.config_path = self.root / "hub.toml"
        self.log_path = self.root / "hub.log"
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen | None = None
        self.seen: set[HostProcess] = set()
        self.spoke_cgroups: set[Path] = set()
        self.apps_dir.mkdir()
        for name, text in manifests.items():
            self.write_manifest(name, text)
        self.config_path.write_text(self.config_text())

    def config_text(self) -> str:
        return render_toml(
            {
                "server": {"socket": self.socket},
                "paths": {"apps": self.apps_dir, "state": self.state_dir},
                "spokes": {"idle_timeout": "5m"},
                "sandbox": {"uid_base": UID_BASE},
            }
        )

    def write_manifest(self, name: str, text: str) -> Path:
        path = self.apps_dir / f"{name}.toml"
        path.write_text(text)
        return path

    # Lifecycle

    def start(self, wait_for_socket: bool = True, pass_fds: tuple[int, ...] = (), preexec_fn=None) -> None:
        """Start bulkheadd. pass_fds stay open in it, and preexec_fn runs in the child before exec."""
        env = {key: value for key, value in os.environ.items() if key != "NOTIFY_SOCKET"}
        env.setdefault("RUST_LOG", "info")
        env.update(self.extra_env)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(RELEASE / "bulkheadd"), "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                pass_fds=pass_fds,
                preexec_fn=preexec_fn,
            )
        if wait_for_socket:
            self.wait_for_socket()

    def wait_for_socket(self) -> None:
        def ready():
            if self.process.poll() is not None:
                raise HubError(f"bulkheadd exited with {self.process.returncode} during start\n{self.log_tail()}")
            return self.socket_accepts()

        if not wait_until(ready, SOCKET_TIMEOUT):
            raise HubError(f"bulkheadd did not listen on {self.socket} within {SOCKET_TIMEOUT} s\n{self.log_tail()}")

    def socket_accepts(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(self.socket))
            except OSError:
                return False
        return True

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """Send SIGTERM and return bulkheadd's exit code. Kills it and raises if it does not exit in time."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise HubError(f"bulkheadd did not exit within {timeout} s of SIGTERM\n{self.log_tail()}") from None

    def stop(self) -> None:
        """Record the spokes, stop the hub with SIGTERM and check that it exits 0."""
        if not self.running():
            return
        self.record_spokes()
        code = self.terminate()
        if code != 0:
            raise HubError(f"bulkheadd exited with {code} after SIGTERM, expected 0\n{self.log_tail()}")

    def restart(self) -> None:
        self.stop()
        self.start()

    def leftover_processes(self, timeout: float = 5.0) -> list[HostProcess]:
        """Return the recorded spoke processes still alive after waiting up to timeout seconds."""
        wait_until(lambda: not any(process.alive() for process in self.seen), timeout)
        return sorted((process for process in self.seen if process.alive()), key=lambda p: p.pid)

    def leftover_cgroups(self, timeout: float = 5.0) -> list[Path]:
        """Return the recorded spoke cgroup directories that still exist after up to timeout seconds."""
        wait_until(lambda: not any(path.exists() for path in self.spoke_cgroups), timeout)
        return sorted(path for path in self.spoke_cgroups if path.exists())

    def cleanup(self) -> None:
        """Kill whatever this hub left running and remove its directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for process in self.seen:
            if process.alive():
                os.kill(process.pid, signal.SIGKILL)
        for path in sorted(self.spoke_cgroups, key=lambda p: len(p.parts), reverse=True):
            try:
                path.rmdir()
            except OSError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(bulkheadd wrote no log)"
        tail = "\n".join(ANSI_ESCAPE.sub("", line) for line in text.splitlines()[-lines:])
        return f"--- last {lines} lines of {self.log_path} ---\n{tail}"

    # The CLI

    def cli(self, *args: str, stdin: str | None = None, timeout: float = 90.0) -> tuple[int, str, str]:
        """Run `bulkhead --socket SOCKET ARGS...` and return (exit code, stdout, stderr)."""
        done = subprocess.run(
            [str(RELEASE / "bulkhead"), "--socket", str(self.socket), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return done.returncode, done.stdout, done.stderr

    def cli_json(self, *args: str):
        """Run the CLI with --json, check that it exits 0 and return the parsed output."""
        code, out, err = self.cli("--json", *args)
        if code != 0:
            raise HubError(f"bulkhead --json {' '.join(args)} exited {code}: {err.strip()}\n{self.log_tail()}")
        return json.loads(out)

    def call_json(self, app: str, tool: str, arguments: dict | None = None) -> dict:
        """Call a tool through the CLI and return the MCP CallToolResult, checking isError is false."""
        result = self.cli_json("call", app, tool, "--args", json.dumps(arguments or {}))
        if result.get("isError"):
            raise HubError(f"tool {app}/{tool} returned an error: {result}")
        return result

    def call_text(self, app: str, tool: str, arguments: dict | None = None) -> str:
        """Call a tool and return the text items of its result joined by newlines."""
        return result_text(self.call_json(app, tool, arguments))

    # Spokes

    def spokes(self) -> list[dict]:
        spokes = self.cli_json("spokes")
        self.remember(spokes)
        return spokes

    def spoke(self, app: str) -> dict:
        matching = [spoke for spoke in self.spokes() if spoke["app"] == app]
        if len(matching) != 1:
            raise HubError(f"expected one spoke for {app}, `spokes --json` listed {matching}")
        return matching[0]

    def warm(self, app: str) -> dict:
        """Start the app's spoke by listing its tools, and return its ready spoke record."""
        self.cli_json("tools", app)

        def ready_spoke():
            spoke = self.spoke(app)
            return spoke if spoke["state"] == "ready" and spoke["app_pid"] else None

        spoke = wait_until(ready_spoke, 20.0, interval=0.2)
        if not spoke:
            raise HubError(f"spoke of {app} did not become ready: {self.spoke(app)}\n{self.log_tail()}")
        return spoke

    def record_spokes(self) -> None:
        try:
            self.spokes()
        except (HubError, subprocess.TimeoutExpired):
            pass

    def remember(self, spokes: list[dict]) -> None:
        """Record the spoke runtime, its launcher (the runtime's parent) and the app of each spoke."""
        for spoke in spokes:
            for key in ("pid", "app_pid"):
                pid = spoke.get(key) or 0
                process = host_process(pid, f"{spoke['app']} {key}") if pid else None
                if process:
                    self.seen.add(process)
            # The spoke's own cgroups are those it does not share with the hub.
            runtime_pid = spoke.get("pid") or 0
            if runtime_pid:
                self.spoke_cgroups |= cgroup_dirs(runtime_pid) - cgroup_dirs(self.process.pid)
            launcher = parent_pid(runtime_pid)
            if launcher > 1 and launcher not in (os.getpid(), self.process.pid):
                process = host_process(launcher, f"{spoke['app']} launcher")
                if process:
                    self.seen.add(process)


def result_text(result: dict) -> str:
    return "\n".join(item["text"] for item in result.get("content", []) if item.get("type") == "text")
