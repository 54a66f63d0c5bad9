"""bulkhead under a real systemd: a minimal Debian root booted with systemd-nspawn, with bulkhead
installed by `make install DESTDIR=...`.

tests/setup.sh installs debootstrap and systemd-container and builds the cached root under build/.
Each test run boots a temporary copy of it, so the cache stays clean.

On a host whose cgroup controllers are v1, systemd-nspawn mounts them read-only in the container,
and the hub refuses to start a spoke without its cgroup. The fixture then remounts the memory, pids
and cpu hierarchies read-write in the container's own mount namespace, which is the delegation a v2
host gives the container by itself. The host's mounts stay as they are.
"""

import json
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from harness import BUILD, REPO, wait_until

CACHED_ROOT = BUILD / "debian-bookworm"
ROOT_STAMP = CACHED_ROOT / ".bulkhead-stamp"
BOOT_TIMEOUT = 60.0
# The cgroup v1 controllers that the hub puts each spoke in.
SPOKE_CONTROLLERS = ("memory", "pids", "cpu")
NOTE_ARGS = json.dumps({"title": "from the container", "body": "written by a spoke under systemd"})


class Container:
    """One booted systemd-nspawn container, reached with nsenter into its PID 1's namespaces."""

    def __init__(self, root: Path):
        self.root = root
        self.name = f"bulkhead-test-{uuid.uuid4().hex[:8]}"
        self.log_path = root.parent / "nspawn.log"
        self.process: subprocess.Popen | None = None
        self.leader = 0

    def boot(self) -> None:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                ["systemd-nspawn", "--boot", "--quiet", "--register=no", "--keep-unit", f"--machine={self.name}", "-D", str(self.root)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        if not wait_until(self.find_leader, 20.0, interval=0.2):
            raise AssertionError(f"systemd-nspawn started no container init within 20 s\n{self.log_tail()}")

        def booted():
            state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
            return state in ("running", "degraded")

        if not wait_until(booted, BOOT_TIMEOUT, interval=0.5):
            raise AssertionError(f"this machine cannot boot the container: systemd did not reach running within {BOOT_TIMEOUT} s\n{self.log_tail()}")
        self.delegate_cgroups()

    def delegate_cgroups(self) -> None:
        """Make the container's read-only cgroup v1 controllers that spokes need writable, in the
        container's mount namespace only. Under a cgroup namespace those mounts hold only the
        container's own subtree, so this is the delegation systemd-nspawn gives on a cgroup v2 host."""
        mounts = self.run("cat", "/proc/self/mounts").stdout.splitlines()
        for controller in SPOKE_CONTROLLERS:
            target = f"/sys/fs/cgroup/{controller}"
            fields = next((line.split() for line in mounts if line.split()[1:3] == [target, "cgroup"]), None)
            if fields is None or "ro" not in fields[3].split(","):
                continue
            subprocess.run(
                ["nsenter", "-t", str(self.leader), "-m", "mount", "-o", "remount,bind,rw,nosuid,nodev,noexec", target],
                check=True,
                timeout=30,
            )

    def find_leader(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited with {self.process.returncode}\n{self.log_tail()}")
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        for child in children:
            try:
                if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                    self.leader = int(child)
                    return True
            except FileNotFoundError:
                continue
        return False

    def run(self, *command: str, check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess:
        done = subprocess.run(
            ["nsenter", "-t", str(self.leader), "-a", *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} exited {done.returncode} in the container:\n{done.stdout}\n{done.stderr}")
        return done

    def show(self, *properties: str) -> dict[str, str]:
        text = self.run("systemctl", "show", "bulkhead", *(f"--property={name}" for name in properties)).stdout
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def journal(self, *options: str) -> str:
        return self.run("journalctl", "-u", "bulkhead", "--no-pager", *options).stdout

    def shutdown(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        if self.leader:
            self.run("systemctl", "poweroff", check=False)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()[-30:]
        except FileNotFoundError:
            return "(no systemd-nspawn output)"
        return "--- systemd-nspawn output ---\n" + "\n".join(lines)


@pytest.fixture(scope="module")
def container(root_privileges):
    for tool in ("systemd-nspawn", "nsenter"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing; run tests/setup.sh, which installs systemd-container")
    if not ROOT_STAMP.exists():
        pytest.fail(f"the Debian root {CACHED_ROOT} is missing; run tests/setup.sh to build it with debootstrap")

    workdir = Path(tempfile.mkdtemp(prefix="bh-nspawn-", dir="/tmp"))
    root = workdir / "root"
    instance = Container(root)
    try:
        subprocess.run(["cp", "-a", str(CACHED_ROOT), str(root)], check=True, timeout=300)
        install = subprocess.run(
            ["make", "-s", "-C", str(REPO), "install", f"DESTDIR={root}", "PREFIX=/usr"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert install.returncode == 0, f"make install DESTDIR={root} failed:\n{install.stdout}\n{install.stderr}"
        examples = root / "usr/share/bulkhead/examples/apps.d"
        shutil.copy(examples / "notes.toml", root / "etc/bulkhead/apps.d/notes.toml")
        instance.boot()
        yield instance
    finally:
        instance.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)


def app_names(container: Container) -> list[str]:
    listed = json.loads(container.run("bulkhead", "--json", "apps", "list").stdout)
    return [app["name"] for app in listed["apps"]]


def test_units_verify_inside(container):
    done = container.run("systemd-analyze", "verify", "bulkhead.service", "bulkhead.socket", check=False)
    assert done.returncode == 0, f"systemd-analyze verify failed:\n{done.stderr}"
    assert "bulkhead" not in done.stderr, f"systemd-analyze verify warned:\n{done.stderr}"


def test_start_active_after_ready(container):
    container.run("systemctl", "start", "bulkhead")
    state = container.show("ActiveState", "SubState", "StatusText", "Type")
    assert state["Type"] == "notify"
    assert state["ActiveState"] == "active"
    assert state["SubState"] == "running"
    # The status line is sent in the same message as READY=1, so start returned after READY=1.
    assert state["StatusText"] == "apps: 1, spokes: 0, pending approvals: 0"
    assert app_names(container) == ["notes"]


def test_reload_adds_new_manifest(container):
    container.run("systemctl", "start", "bulkhead")
    examples = container.root / "usr/share/bulkhead/examples/apps.d"
    shutil.copy(examples / "calendar.toml", container.root / "etc/bulkhead/apps.d/calendar.toml")
    main_pid = container.show("MainPID")["MainPID"]

    container.run("systemctl", "reload", "bulkhead")
    assert wait_until(lambda: app_names(container) == ["calendar", "notes"], 10.0), app_names(container)
    assert container.show("MainPID")["MainPID"] == main_pid, "reload restarted the hub"
    assert wait_until(lambda: container.show("StatusText")["StatusText"].startswith("apps: 2,"), 10.0)


def process_names(container: Container) -> list[str]:
    # Minimal Debian has no pgrep, so the shell lists the command names of the container's processes.
    names = container.run("sh", "-c", "cat /proc/[0-9]*/comm 2>/dev/null; true").stdout.split()
    assert "systemd" in names, f"the process listing is broken: {names}"
    return names


def spoke_processes(container: Container) -> list[str]:
    return [name for name in process_names(container) if name.startswith(("bulkhead-spoke", "bulkhead-app"))]


def test_cli_calls_tool_inside(container):
    container.run("systemctl", "start", "bulkhead")
    added = container.run("bulkhead", "call", "notes", "add_note", "--args", NOTE_ARGS)
    assert added.stdout.startswith("added note "), added.stdout
    found = container.run("bulkhead", "call", "notes", "search_notes", "--args", json.dumps({"query": "under systemd"}))
    assert "written by a spoke under systemd" in found.stdout, found.stdout
    spokes = json.loads(container.run("bulkhead", "--json", "spokes").stdout)
    assert [spoke["app"] for spoke in spokes] == ["notes"], spokes
    assert spoke_processes(container), "the spoke answered but no spoke process is listed"


def ensure_calendar(container: Container) -> None:
    target = container.root / "etc/bulkhead/apps.d/calendar.toml"
    if not target.exists():
        shutil.copy(container.root / "usr/share/bulkhead/examples/apps.d/calendar.toml", target)
        container.run("systemctl", "reload", "bulkhead")
    assert wait_until(lambda: "calendar" in app_names(container), 10.0), app_names(container)


def copy_note_to_calendar(container: Container, session: str) -> subprocess.Popen:
    """Start a session that reads the notes and then puts a note's text into a calendar event,
    a flow that the verbatim rule sends to the broker. Returns the running create_event call."""
    container.run("bulkhead", "call", "--session", session, "notes", "search_notes", "--args", json.dumps({"query": "systemd"}))
    event = {"title": "written by a spoke under systemd", "start": "2030-01-15 10:00", "duration_minutes": 30}
    command = ["bulkhead", "call", "--session", session, "calendar", "create_event", "--args", json.dumps(event)]
    return subprocess.Popen(
        ["nsenter", "-t", str(container.leader), "-a", *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def grant_always(container: Container) -> str:
    """Approve the note-to-calendar flow with --always through `bulkhead approvals --json` and
    `bulkhead approve`, and return the grant's id."""
    watcher = subprocess.Popen(
        ["nsenter", "-t", str(container.leader), "-a", "bulkhead", "approvals", "--json"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = watcher.stderr.readline()
        assert ready.startswith("watching for flows"), f"bulkhead approvals said: {ready!r}"
        call = copy_note_to_calendar(container, "grant")
        request = json.loads(watcher.stdout.readline())
        assert (request["event"], request["target_app"], request["tool"]) == ("request", "calendar", "create_event"), request
        container.run("bulkhead", "approve", request["id"], "--always")
        out, err = call.communicate(timeout=60)
        assert call.returncode == 0, f"create_event failed after the approval:\n{out}\n{err}"
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)
    grants = json.loads(container.run("bulkhead", "--json", "grants", "list").stdout)
    assert [(g["scope"], g["target_app"], g["tool"]) for g in grants] == [("always", "calendar", "create_event")], grants
    return grants[0]["id"]


def test_sigkill_restarts_hub(container):
    container.run("systemctl", "start", "bulkhead")
    ensure_calendar(container)
    container.run("bulkhead", "call", "notes", "add_note", "--args", NOTE_ARGS)
    grant = grant_always(container)
    assert spoke_processes(container), "no spoke runs before the hub is killed"
    before = container.show("MainPID", "NRestarts")

    # Minimal Debian has no /bin/kill, so the shell's built-in sends the signal.
    container.run("sh", "-c", f"kill -9 {before['MainPID']}")

    def restarted():
        now = container.show("MainPID", "NRestarts", "ActiveState")
        return now["ActiveState"] == "active" and now["MainPID"] not in ("0", before["MainPID"])

    assert wait_until(restarted, 20.0, interval=0.5), container.show("MainPID", "NRestarts", "ActiveState")
    assert int(container.show("NRestarts")["NRestarts"]) == int(before["NRestarts"]) + 1
    assert "notes" in app_names(container)
    ledger = container.root / "var/lib/bulkhead/spokes"
    assert not ledger.exists() or list(ledger.iterdir()) == []
    assert spoke_processes(container) == [], "spokes of the killed hub are still running"
    verify = container.run("bulkhead", "audit", "verify", "--state", "/var/lib/bulkhead", check=False)
    assert verify.returncode == 0, f"audit verify failed after kill -9:\n{verify.stdout}\n{verify.stderr}"
    listed = container.run("bulkhead", "call", "notes", "list_notes")
    assert "from the container" in listed.stdout, listed.stdout
    grants = json.loads(container.run("bulkhead", "--json", "grants", "list").stdout)
    assert [g["id"] for g in grants] == [grant], f"the grant did not survive the restart: {grants}"
    # With no approver attached, only the stored grant lets the same flow through again.
    call = copy_note_to_calendar(container, "after-restart")
    out, err = call.communicate(timeout=60)
    assert call.returncode == 0, f"the stored grant did not apply after the restart:\n{out}\n{err}"


def test_watchdog_restarts_hung_hub(container):
    dropin = container.root / "etc/systemd/system/bulkhead.service.d"
    dropin.mkdir(parents=True, exist_ok=True)
    (dropin / "hang.conf").write_text("[Service]\nEnvironment=BULKHEAD_TEST_HANG_AFTER_READY=1\nWatchdogSec=2s\n")
    try:
        container.run("systemctl", "daemon-reload")
        container.run("systemctl", "restart", "bulkhead")
        before = container.show("MainPID", "NRestarts")

        def restarted():
            now = container.show("MainPID", "NRestarts")
            return now["NRestarts"] != before["NRestarts"] and now["MainPID"] not in ("0", before["MainPID"])

        assert wait_until(restarted, 20.0, interval=0.5), container.show("MainPID", "NRestarts", "ActiveState")
        assert "Watchdog timeout" in container.journal()
    finally:
        shutil.rmtree(dropin)
        container.run("systemctl", "daemon-reload")
        container.run("systemctl", "restart", "bulkhead")


def test_stop_leaves_no_process(container):
    container.run("systemctl", "start", "bulkhead")
    container.run("systemctl", "stop", "bulkhead")
    assert container.show("ActiveState")["ActiveState"] == "inactive"
    left = [name for name in process_names(container) if name.startswith("bulkhead")]
    assert left == [], f"processes left after systemctl stop: {left}"


def test_journal_has_lifecycle_fields(container):
    container.run("systemctl", "start", "bulkhead")
    container.run("bulkhead", "call", "notes", "list_notes")
    verbose = container.journal("-o", "verbose")
    assert "MESSAGE=bulkheadd serving" in verbose
    assert "F_SOCKET=/run/bulkhead/hub.sock" in verbose
    assert "F_APPS=" in verbose
    assert "MESSAGE=manifests reloaded" in verbose
    assert "MESSAGE=SIGTERM received; shutting down" in verbose
    assert "MESSAGE=spoke ready" in verbose
    assert "F_APP=notes" in verbose
    assert "F_ELAPSED_MS=" in verbose
    assert "SYSLOG_IDENTIFIER=bulkheadd" in verbose
