"""The escape suite: a hostile app tries every known way out of its spoke, next to a victim and a
bystander, and each attempt must end as expected.

The victim is the probe app, whose /state contains a random marker. The bystander is the notes app.
The hub runs with a pseudo-terminal as its controlling terminal and with two inherited descriptors
(a directory descriptor of the host's / and a file descriptor 2048 holding a marker), so that
terminal injection and descriptor leaks have something to aim at. Each test prints its table of
attempt, expected and observed, ending with "N passed, N failed".
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import select
import shutil
import socket
import stat
import subprocess
import termios
import tty
import time

import grpc

import manifests
from harness import render_toml
from escape import Table, call_attempt, fails, one_of, succeeds
from grpc_client import agent, hub_pb2, open_channel
from harness import RELEASE, cgroup_dirs, proc_status, wait_until

INHERITED_FILE_FD = 2048
DENIED = one_of("EPERM")
SPOKE_DEVICES = {"full", "null", "random", "urandom", "zero", "stdin", "stdout", "stderr", "fd"}


class HostTargets:
    """Listeners that the test opens on the host, which the hostile app must not reach."""

    def __init__(self):
        self.tcp4 = listener(socket.AF_INET, "127.0.0.1")
        self.tcp6 = listener(socket.AF_INET6, "::1")
        self.abstract_name = f"bulkhead-escape-{secrets.token_hex(6)}"
        self.abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.abstract.bind("\0" + self.abstract_name)
        self.abstract.listen(8)
        self.abstract.setblocking(False)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.setblocking(False)

    def received(self) -> list[str]:
        """Return a description of everything that reached a listener."""
        events = []
        for name, server in (("tcp4", self.tcp4), ("tcp6", self.tcp6), ("abstract", self.abstract)):
            try:
                connection, _ = server.accept()
                connection.close()
                events.append(f"{name} accepted a connection")
            except (BlockingIOError, OSError):
                pass
        try:
            data = self.udp.recv(4096)
            events.append(f"udp received {data!r}")
        except (BlockingIOError, OSError):
            pass
        return events

    def close(self):
        for server in (self.tcp4, self.tcp6, self.abstract, self.udp):
            server.close()


def listener(family: int, address: str) -> socket.socket:
    server = socket.socket(family, socket.SOCK_STREAM)
    server.bind((address, 0))
    server.listen(8)
    server.setblocking(False)
    return server


class Terminal:
    """A pseudo-terminal that becomes bulkheadd's controlling terminal."""

    def __init__(self):
        self.master, self.slave = os.openpty()
        # Raw mode, so that a single injected byte is readable without a newline after it.
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)

    def make_controlling(self):
        """Start a new session and take the terminal, in bulkheadd's child before exec."""
        os.setsid()
        fcntl.ioctl(self.slave, termios.TIOCSCTTY, 0)

    def pending_input(self) -> bytes:
        """Return the bytes waiting in the terminal's input queue, which the slave side reads and TIOCSTI fills."""
        os.set_blocking(self.slave, False)
        chunks = b""
        while select.select([self.slave], [], [], 0.2)[0]:
            try:
                chunk = os.read(self.slave, 4096)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            chunks += chunk
        return chunks

    def pending_output(self) -> bytes:
        chunks = b""
        while select.select([self.master], [], [], 0.2)[0]:
            try:
                chunk = os.read(self.master, 4096)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            chunks += chunk
        return chunks

    def close(self):
        os.close(self.master)
        os.close(self.slave)


class InheritedFds:
    """A directory descriptor of the host's / and descriptor 2048 holding a marker, not close-on-exec."""

    def __init__(self, marker: str, directory):
        path = directory / "inherited-marker"
        path.write_text(marker)
        self.root = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
        os.set_inheritable(self.root, True)
        opened = os.open(path, os.O_RDONLY)
        os.dup2(opened, INHERITED_FILE_FD, inheritable=True)
        os.close(opened)

    def numbers(self) -> tuple[int, int]:
        return (self.root, INHERITED_FILE_FD)

    def close(self):
        os.close(self.root)
        os.close(INHERITED_FILE_FD)


def start_hub(hub, apps: dict[str, str], terminal: Terminal, fds: InheritedFds):
    bulkhead = hub(apps, start=False)
    bulkhead.start(pass_fds=fds.numbers(), preexec_fn=terminal.make_controlling)
    return bulkhead


def test_hostile_app_stays_contained(hub, tmp_path):
    marker = f"victim-marker-{secrets.token_hex(16)}"
    fd_marker = f"inherited-marker-{secrets.token_hex(16)}"
    apps = {
        "hostile": manifests.hostile(),
        "probe": manifests.probe(),
        "notes": manifests.example("notes"),
    }
    terminal = Terminal()
    fds = InheritedFds(fd_marker, tmp_path)
    targets = HostTargets()
    table = Table()
    try:
        bulkhead = start_hub(hub, apps, terminal, fds)
        assert bulkhead.call_text("probe", "write_file", {"path": "/state/marker", "text": marker}).startswith("wrote")
        victim = bulkhead.warm("probe")
        bystander = bulkhead.warm("notes")
        hostile = bulkhead.warm("hostile")
        victim_marker = bulkhead.state_dir / "apps" / "probe" / "marker"
        assert victim_marker.read_text() == marker, "the victim's marker is not where the host keeps its state"

        check_files(bulkhead, table, marker, victim_marker)
        check_processes(bulkhead, table, victim, bystander, hostile)
        check_network(bulkhead, table, targets)
        check_kernel_interfaces(bulkhead, table)
        check_terminal(bulkhead, table, terminal)
        check_inherited_fds(bulkhead, table, fds, fd_marker)
        check_privileges(bulkhead, table, hostile)
        check_legitimate_work(bulkhead, table, tmp_path)
        check_links_after_restart(bulkhead, table, marker, victim_marker)
    finally:
        print()
        print(table.render())
        targets.close()
        fds.close()
        terminal.close()

    assert table.failed() == 0, f"{table.failed()} escape attempts did not end as expected:\n{table.render()}"


def check_files(bulkhead, table: Table, marker: str, victim_marker):
    """the victim's marker through every path the hostile app can name."""
    victim_pid = bulkhead.spoke("probe")["pid"]
    paths = [
        "/state/marker",
        str(victim_marker),
        "/proc/1/root/state/marker",
        f"/proc/{victim_pid}/root/state/marker",
        f"/proc/{victim_pid}/root{victim_marker}",
    ]
    for mount_point in ("/state", "/tmp", "/proc", "/dev", "/app/bin", "/usr", "/etc"):
        paths.append(f"{mount_point}/../../../..{victim_marker}")
        paths.append(f"{mount_point}/../../../../proc/1/root/state/marker")
    for path in paths:
        outcome = call_attempt(bulkhead, "read_file", {"path": path})
        leaked = marker in outcome.get("detail", "")
        observed = "marker read" if leaked else outcome["result"]
        table.record(f"read {path}", "no marker", observed, not leaked)


def check_processes(bulkhead, table: Table, victim: dict, bystander: dict, hostile: dict):
    """signalling, reading, tracing and reading the memory of other processes."""
    targets = {
        "hub": bulkhead.process.pid,
        "victim spoke": victim["pid"],
        "victim app": victim["app_pid"],
        "bystander spoke": bystander["pid"],
    }
    for role, pid in targets.items():
        table.expect(bulkhead, f"kill {role} ({pid})", "kill", {"pid": pid, "signal": 9}, one_of("ESRCH", "EPERM"))
        for file in ("status", "environ", "mem"):
            table.expect(bulkhead, f"read /proc/{role}/{file}", "read_proc", {"pid": pid, "file": file}, fails())
        table.expect(bulkhead, f"ptrace {role}", "ptrace_attach", {"pid": pid}, DENIED)
        table.expect(bulkhead, f"process_vm_readv {role}", "process_vm_readv", {"pid": pid}, DENIED)

    for file in ("environ", "mem", "root"):
        table.expect(bulkhead, f"read /proc/1/{file}", "read_proc", {"pid": 1, "file": file}, fails())
    table.expect(bulkhead, "list /proc/1/root", "list_dir", {"path": "/proc/1/root"}, fails())
    table.expect(bulkhead, "ptrace own runtime (pid 1)", "ptrace_attach", {"pid": 1}, DENIED)
    table.expect(bulkhead, "process_vm_readv own runtime", "process_vm_readv", {"pid": 1}, DENIED)
    call_attempt(bulkhead, "kill", {"pid": 1, "signal": 9})
    survived = bulkhead.spoke("hostile")["pid"] == hostile["pid"]
    table.record("SIGKILL own runtime (pid 1)", "runtime survives", "survived" if survived else "runtime died", survived)

    alive = all(process_alive(pid) for pid in targets.values())
    table.record("host processes after the attempts", "all alive", "all alive" if alive else "one died", alive)


def process_alive(pid: int) -> bool:
    try:
        return proc_status(pid).get("State", "Z")[0] not in "ZX"
    except (FileNotFoundError, ProcessLookupError):
        return False


def check_network(bulkhead, table: Table, targets: HostTargets):
    """every route to the host's network and the hub's socket."""
    table.expect(bulkhead, "connect AF_INET host loopback", "connect_tcp", {"host": "127.0.0.1", "port": targets.tcp4.getsockname()[1]}, fails())
    table.expect(bulkhead, "connect AF_INET6 host loopback", "connect_tcp", {"host": "::1", "port": targets.tcp6.getsockname()[1]}, fails())
    table.expect(bulkhead, "connect host abstract socket", "connect_abstract", {"name": targets.abstract_name}, fails())
    table.expect(bulkhead, "connect hub socket", "connect_unix", {"path": str(bulkhead.socket)}, fails())
    for family in ("packet", "vsock", "netlink"):
        table.expect(bulkhead, f"socket AF_{family.upper()}", "open_socket", {"family": family}, DENIED)
    table.expect(bulkhead, "resolve a DNS name", "resolve", {"name": "bulkhead-escape.invalid"}, fails())
    call_attempt(bulkhead, "send_udp", {"host": "127.0.0.1", "port": targets.udp.getsockname()[1]})

    events = targets.received()
    observed = "; ".join(events) or "nothing"
    table.record("host listeners (tcp, abstract, udp)", "nothing", observed, not events)


def check_kernel_interfaces(bulkhead, table: Table):
    """mounts, namespaces, keyrings, BPF, perf, userfaultfd, io_uring, personality, ABIs."""
    for tool in ("mount", "umount2", "pivot_root", "chroot_escape", "unshare_user", "clone_newuser", "fsopen", "open_tree", "keyctl", "add_key", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "personality"):
        table.expect(bulkhead, tool, tool, {}, DENIED)
    table.expect(bulkhead, "setns", "setns", {}, fails())
    table.expect(bulkhead, "x32 syscall number", "x32_syscall", {}, one_of("ENOSYS", "killed by SIGSYS"))
    table.expect(bulkhead, "int 0x80 from 64-bit code", "int80", {}, one_of("killed by SIGSYS"))


def check_terminal(bulkhead, table: Table, terminal: Terminal):
    """TIOCSTI and TIOCLINUX on the std streams and /dev/tty must inject nothing."""
    for fd in (0, 1, 2):
        for high_bit in (0, 1):
            label = f"TIOCSTI fd {fd}" + (" | 1<<32" if high_bit else "")
            table.expect(bulkhead, label, "tiocsti", {"fd": fd, "high_bit": high_bit}, fails())
        table.expect(bulkhead, f"TIOCLINUX fd {fd}", "tioclinux", {"fd": fd}, fails())
    for high_bit in (0, 1):
        label = "TIOCSTI /dev/tty" + (" | 1<<32" if high_bit else "")
        table.expect(bulkhead, label, "tiocsti", {"path": "/dev/tty", "high_bit": high_bit}, fails())
    table.expect(bulkhead, "TIOCLINUX /dev/tty", "tioclinux", {"path": "/dev/tty"}, fails())

    arrived = terminal.pending_input() + terminal.pending_output()
    table.record("hub's terminal", "nothing arrives", repr(arrived) if arrived else "nothing", not arrived)


def check_inherited_fds(bulkhead, table: Table, fds: InheritedFds, fd_marker: str):
    """descriptors that bulkheadd inherited must not reach the app."""
    listing = call_attempt(bulkhead, "list_fds")
    pairs = dict(pair.split("=", 1) for pair in listing.get("detail", "").split())
    leaked = {number: target for number, target in pairs.items() if target == "/" or "inherited-marker" in target}
    observed = "none" if not leaked else str(leaked)
    table.record("/proc/self/fd targets", "no inherited fd", observed, listing["result"] == "ok" and not leaked)
    for number in fds.numbers():
        outcome = call_attempt(bulkhead, "use_fd", {"fd": number})
        leaked_marker = fd_marker in outcome.get("detail", "")
        passed = outcome["result"] != "ok" and not leaked_marker
        table.record(f"fchdir, openat and read fd {number}", "fails", f"{outcome['result']} ({outcome.get('detail', '')})", passed)

    manifest = render_toml(
        {"name": "fd-cwd", "description": "Working directory in an inherited descriptor.", "command": "bulkhead-app-hostile", "cwd": "/proc/self/fd/3"}
    )
    code, _, err = bulkhead.cli("apps", "add", "-", stdin=manifest)
    table.record("manifest cwd under /proc/self/fd", "rejected", f"exit {code}: {err.strip()[:60]}", code != 0 and "cwd" in err)


def check_privileges(bulkhead, table: Table, hostile: dict):
    """no capabilities, no setuid gain, read-only mounts, no devices, no /sys."""
    status = call_attempt(bulkhead, "read_file", {"path": "/proc/self/status"}).get("detail", "")
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    for key, expected in (("CapEff", "0000000000000000"), ("CapPrm", "0000000000000000"), ("CapBnd", "0000000000000000"), ("NoNewPrivs", "1"), ("Seccomp", "2")):
        observed = fields.get(key, "missing").strip()
        table.record(f"/proc/self/status {key}", expected, observed, observed == expected)

    # A setuid-root copy of the hostile binary, placed in the app's state by the host.
    state = bulkhead.state_dir / "apps" / "hostile"
    copy = state / "setuid-copy"
    shutil.copyfile(RELEASE / "bulkhead-app-hostile", copy)
    os.chown(copy, 0, 0)
    os.chmod(copy, 0o4755)
    assert os.stat(copy).st_mode & stat.S_ISUID
    outcome = call_attempt(bulkhead, "exec_setuid", {"name": "setuid-copy"})
    detail = outcome.get("detail", "")
    gained = outcome["result"] == "exit 0" and "euid=0 CapEff=0000000000000000" not in detail
    table.record("exec setuid-root copy in /state", "gains nothing", f"{outcome['result']} ({detail})", not gained)
    copy.unlink()

    for path in ("/usr/escape", "/etc/passwd", "/app/bin/escape", "/escape", "/proc/sys/kernel/hostname", "/proc/sysrq-trigger"):
        table.expect(bulkhead, f"write {path}", "write_file", {"path": path}, fails())
    table.expect(bulkhead, "mknod /tmp/null", "mknod", {"path": "/tmp/null"}, fails())
    table.expect(bulkhead, "list /sys", "list_dir", {"path": "/sys"}, one_of("ENOENT"))
    devices = call_attempt(bulkhead, "list_dir", {"path": "/dev"})
    names = set(devices.get("detail", "").split())
    table.record("list /dev", "only std devices", " ".join(sorted(names)), devices["result"] == "ok" and names <= SPOKE_DEVICES)


def check_legitimate_work(bulkhead, table: Table, tmp_path):
    """work that ordinary apps do must succeed under the same policy."""
    for tool in ("threads", "resolve_localhost", "socketpair_passcred", "statx_rseq"):
        table.expect(bulkhead, tool, tool, {}, succeeds())

    python = str(manifests.TIME_TARGET / "bin" / "python")
    script = (
        "import asyncio\n"
        "async def main():\n"
        "    process = await asyncio.create_subprocess_exec('/bin/sh', '-c', 'echo asyncio-child', stdout=asyncio.subprocess.PIPE)\n"
        "    out, _ = await process.communicate()\n"
        "    print(out.decode().strip(), process.returncode)\n"
        "asyncio.run(main())\n"
    )
    result = json.loads(bulkhead.call_text("probe", "run", {"argv": [python, "-c", script]}))
    observed = f"code {result['code']}: {result['stdout'].strip()} {result['stderr'].strip()[:60]}"
    table.record("python asyncio subprocess", "asyncio-child 0", observed, result["stdout"].strip() == "asyncio-child 0")

    node_check(bulkhead, table, tmp_path)
    node_jit_check(bulkhead, table)


# Forces V8's optimizing compiler on one function and prints its optimization status. Bit 16 of the
# status means the function runs as optimized machine code (V8's OptimizationStatus, Node 20).
NODE_JIT_SCRIPT = (
    "function add(a, b) { return a + b; }\n"
    "%PrepareFunctionForOptimization(add); add(1, 2); add(3, 4);\n"
    "%OptimizeFunctionOnNextCall(add); add(5, 6);\n"
    "console.log((%GetOptimizationStatus(add) & 16) ? 'optimized' : 'interpreted');\n"
)


def node_jit_check(bulkhead, table: Table):
    """Run Node inside the probe's spoke, under the same seccomp policy, and JIT-compile a function."""
    node = str(manifests.node_binary())
    result = json.loads(bulkhead.call_text("probe", "run", {"argv": [node, "--allow-natives-syntax", "-e", NODE_JIT_SCRIPT]}))
    observed = f"code {result['code']}: {result['stdout'].strip()} {result['stderr'].strip()[:60]}"
    table.record("node JIT-compiles a function", "optimized", observed.strip(), result["stdout"].strip() == "optimized")


def node_check(bulkhead, table: Table, tmp_path):
    """Start Node through the npm filesystem server and call one of its tools."""
    data = tmp_path / "node-data"
    data.mkdir()
    (data / "hello.txt").write_text("hello from the host")
    data.chmod(0o755)
    tmp_path.chmod(0o755)
    code, out, err = bulkhead.cli("apps", "add", "-", stdin=manifests.mcp_filesystem(data))
    if code != 0:
        table.record("node starts", "ok", f"apps add failed: {err.strip()[:60]}", False)
        return
    code, out, err = bulkhead.cli("--json", "call", "files", "read_text_file", "--args", json.dumps({"path": "/data/hello.txt"}))
    passed = code == 0 and "hello from the host" in out
    table.record("node runs an MCP server", "ok", "ok" if passed else f"exit {code}: {err.strip()[:60]}", passed)


def check_links_after_restart(bulkhead, table: Table, marker: str, victim_marker):
    """plant a symlink and a hardlink in /state, restart, and follow them."""
    outcome = call_attempt(bulkhead, "plant_links", {"target": str(victim_marker)})
    table.record("plant links to the victim's marker", "planted or refused", outcome.get("detail", ""), outcome["result"] == "ok")

    owner_before = os.lstat(victim_marker).st_uid
    bulkhead.restart()
    bulkhead.warm("hostile")

    for path in ("/state/escape-symlink", "/state/escape-hardlink"):
        outcome = call_attempt(bulkhead, "read_file", {"path": path})
        leaked = marker in outcome.get("detail", "")
        table.record(f"read {path} after restart", "no marker", "marker read" if leaked else outcome["result"], not leaked)

    owner_after = os.lstat(victim_marker).st_uid
    root_owner = os.lstat("/").st_uid
    unchanged = owner_after == owner_before and root_owner == 0
    table.record("host owners after restart", "unchanged", f"marker uid {owner_after}, / uid {root_owner}", unchanged)


# Resources: each attempt runs while the bystander keeps answering.

RESOURCE_PIDS = 600
RESOURCE_CPU = 0.25
# Large enough that a fork bomb of RESOURCE_PIDS processes (each with its own page tables and
# kernel stack) meets the pids limit before the memory limit.
RESOURCE_MEMORY_MIB = 256
# The upper bound on CPU seconds per wall second that a spin may show at a 0.25 CPU limit. Two
# spinning threads without the limit would show about 2.0, and the kernel's quota periods of 100 ms
# let a 3 s spin overshoot 0.25 only by a fraction of one period.
MAX_CPU_SHARE = 0.4


def grpc_call(stub, tool: str, arguments: dict, timeout: float = 60.0):
    """Call a hostile tool over gRPC and return (outcome dict or None, grpc error or None)."""
    request = hub_pb2.CallToolRequest(app="hostile", tool=tool, arguments_json=json.dumps(arguments))
    try:
        response = stub.CallTool(request, timeout=timeout)
    except grpc.RpcError as error:
        return None, error
    result = json.loads(response.result_json)
    return result.get("structuredContent"), None


def bystander_answers(bulkhead) -> bool:
    code, out, _ = bulkhead.cli("--json", "call", "notes", "list_notes")
    return code == 0 and not json.loads(out).get("isError")


def test_hostile_resource_use_is_contained(hub):
    apps = {
        "hostile": manifests.hostile(memory=f"{RESOURCE_MEMORY_MIB}MiB", pids=RESOURCE_PIDS, cpu=RESOURCE_CPU, call_timeout="8s"),
        "notes": manifests.example("notes"),
    }
    bulkhead = hub(apps)
    bulkhead.warm("notes")
    hostile = bulkhead.warm("hostile")
    table = Table()

    def record_bystander(after: str):
        answers = bystander_answers(bulkhead) and bulkhead.running()
        table.record(f"hub and bystander after {after}", "answer", "answer" if answers else "down", answers)

    try:
        pids_limits = pids_max_values(hostile["pid"]) - pids_max_values(bulkhead.process.pid)
        table.record("spoke's own pids.max", str(RESOURCE_PIDS), " ".join(sorted(pids_limits)) or "none", pids_limits == {str(RESOURCE_PIDS)})

        with open_channel(bulkhead.socket) as channel:
            stub = agent(channel)
            for after_unshare in (0, 1):
                label = "fork bomb" + (" after unshare" if after_unshare else "")
                outcome, error = grpc_call(stub, "fork_bomb", {"after_unshare": after_unshare})
                detail = outcome["detail"] if outcome else f"call failed: {error.details()}"
                forked = forked_count(detail)
                capped = "stopped by EAGAIN" in detail and 0 < forked < RESOURCE_PIDS
                table.record(label, f"capped below {RESOURCE_PIDS}", detail, capped)
                record_bystander(label)

            outcome, error = grpc_call(stub, "cpu_spin", {"seconds": 3})
            share = float(outcome["detail"]) if outcome else -1.0
            table.record("cpu spin, 2 threads", f"<= {MAX_CPU_SHARE} CPU", f"{share:.3f} CPU", 0 <= share <= MAX_CPU_SHARE)
            record_bystander("cpu spin")

            outcome, error = grpc_call(stub, "orphans", {"count": 500})
            table.record("500 orphans", "forked 500", outcome["detail"] if outcome else error.details(), bool(outcome) and "forked 500 children" in outcome["detail"])
            time.sleep(1.0)
            outcome, error = grpc_call(stub, "count_zombies", {})
            zombies = outcome["detail"] if outcome else error.details()
            table.record("zombies 1 s after 500 orphans", "0", zombies, zombies == "0")

            outcome, error = grpc_call(stub, "shell_exit", {})
            observed = outcome["result"] if outcome else error.details()
            table.record("sh -c 'exit 7'", "exit 7", observed, observed == "exit 7")

            started = time.monotonic()
            outcome, error = grpc_call(stub, "hang", {"seconds": 120})
            elapsed = time.monotonic() - started
            code = error.code().name if error else "answered"
            table.record("hung call", "DEADLINE_EXCEEDED", f"{code} after {elapsed:.1f} s", code == "DEADLINE_EXCEEDED")
            record_bystander("hung call")

            wait_for_hostile(stub)
            outcome, error = grpc_call(stub, "allocate", {"megabytes": 2 * RESOURCE_MEMORY_MIB})
            details = error.details() if error else f"answered {outcome}"
            table.record("allocate 2x the memory limit", "oom error", details[:90], error is not None and "oom" in details)
            logged = wait_until(lambda: "oom" in bulkhead.log_path.read_text(errors="replace"), 5.0)
            table.record("hub log names the oom kill", "oom", "logged" if logged else "absent", bool(logged))
            record_bystander("oom")
    finally:
        print()
        print(table.render())

    assert table.failed() == 0, f"{table.failed()} resource attempts did not end as expected:\n{table.render()}"


def pids_max_values(pid: int) -> set[str]:
    """Return the pids.max values of the pids cgroups that a process belongs to."""
    values = set()
    for directory in cgroup_dirs(pid):
        limit = directory / "pids.max"
        if limit.exists():
            values.add(limit.read_text().strip())
    return values


def forked_count(detail: str) -> int:
    words = detail.split()
    if "forked" in words:
        index = words.index("forked")
        if index + 1 < len(words) and words[index + 1].isdigit():
            return int(words[index + 1])
    return -1


def wait_for_hostile(stub):
    """Wait until the hostile app answers again after its spoke was killed and restarted."""

    def answers():
        outcome, _ = grpc_call(stub, "count_zombies", {}, timeout=20)
        return outcome is not None

    if not wait_until(answers, 30.0, interval=0.5):
        raise AssertionError("the hostile app did not come back within 30 s of its spoke being killed")


# Fail closed: a primitive that the probe reports missing stops every spoke start.


def test_missing_primitive_stops_spoke(hub):
    bulkhead = hub({"notes": manifests.example("notes")}, env={"BULKHEAD_TEST_MISSING_PRIMITIVE": "openat2"})

    code, _, err = bulkhead.cli("call", "notes", "list_notes")

    assert code != 0, "a spoke started although openat2 was reported missing"
    assert "openat2" in err, f"the error does not name the missing primitive: {err}"
    assert "bulkhead check" in err
    assert [spoke for spoke in bulkhead.spokes() if spoke["state"] == "ready"] == []


def test_check_reports_primitives():
    done = subprocess.run([str(RELEASE / "bulkhead"), "--json", "check"], capture_output=True, text=True, check=False, timeout=30)
    report = json.loads(done.stdout)
    keys = {status["key"] for status in report["primitives"]}

    assert {"user_namespace", "seccomp", "cgroup", "openat2", "close_range", "pidfd"} <= keys
    assert done.returncode == (1 if report["missing_required"] else 0)


def test_check_reports_forced_missing():
    env = {**os.environ, "BULKHEAD_TEST_MISSING_PRIMITIVE": "openat2"}
    done = subprocess.run([str(RELEASE / "bulkhead"), "--json", "check"], capture_output=True, text=True, check=False, timeout=30, env=env)
    report = json.loads(done.stdout)

    assert done.returncode == 1
    assert "openat2" in report["missing_required"]
