"""Isolation of a spoke as seen from the host and from inside, using the probe app."""

import json
import os
import secrets

import manifests
from harness import UID_BASE, namespace, proc_status

NAMESPACES = ("pid", "net", "mnt", "user", "ipc", "uts", "cgroup")


def status_field(status_text: str, key: str) -> str:
    for line in status_text.splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return value.strip()
    raise AssertionError(f"no {key} line in status:\n{status_text}")


def test_spoke_namespaces_differ_from_hub(hub):
    bulkhead = hub({"probe": manifests.probe()})
    spoke = bulkhead.warm("probe")
    hub_pid = bulkhead.process.pid

    for role in ("pid", "app_pid"):
        pid = spoke[role]
        for kind in NAMESPACES:
            assert namespace(pid, kind) != namespace(hub_pid, kind), f"{role} {pid} shares the hub's {kind} namespace"

    for kind in NAMESPACES:
        assert namespace(spoke["pid"], kind) == namespace(spoke["app_pid"], kind), f"app left the spoke's {kind} namespace"


def test_app_has_seccomp_and_no_privileges(hub):
    bulkhead = hub({"probe": manifests.probe()})
    spoke = bulkhead.warm("probe")

    status = proc_status(spoke["app_pid"])

    assert status["Seccomp"] == "2"
    assert status["NoNewPrivs"] == "1"
    assert status["CapEff"] == "0000000000000000"
    assert status["CapPrm"] == "0000000000000000"
    assert status["CapBnd"] == "0000000000000000"
    host_uids = [int(uid) for uid in status["Uid"].split()]
    assert all(uid >= UID_BASE for uid in host_uids), f"app runs as host uid {host_uids}"


def test_app_sees_itself_from_inside(hub):
    bulkhead = hub({"probe": manifests.probe()})
    spoke = bulkhead.warm("probe")

    inside = bulkhead.call_text("probe", "proc_status")

    assert status_field(inside, "Seccomp") == "2"
    assert status_field(inside, "NoNewPrivs") == "1"
    assert status_field(inside, "CapEff") == "0000000000000000"
    assert status_field(inside, "Uid").split()[0] == "0"
    host_nspids = proc_status(spoke["app_pid"])["NSpid"].split()
    assert host_nspids[0] == str(spoke["app_pid"])
    assert status_field(inside, "Pid") == host_nspids[-1]


def test_app_sees_only_its_spoke_pids(hub):
    bulkhead = hub({"probe": manifests.probe()})
    spoke = bulkhead.warm("probe")

    pids = json.loads(bulkhead.call_text("probe", "list_pids"))
    own_pid = int(bulkhead.call_text("probe", "getpid"))

    assert set(pids) == {1, own_pid}
    assert own_pid == int(proc_status(spoke["app_pid"])["NSpid"].split()[-1])
    assert int(proc_status(spoke["pid"])["NSpid"].split()[-1]) == 1


def test_app_filesystem_is_private(hub):
    bulkhead = hub({"probe": manifests.probe()})

    root = json.loads(bulkhead.call_text("probe", "list_dir", {"path": "/"}))
    dev = json.loads(bulkhead.call_text("probe", "list_dir", {"path": "/dev"}))

    assert {"proc", "dev", "tmp", "state", "probe", "usr"} <= set(root)
    assert "sys" not in root
    assert {"null", "zero", "full", "random", "urandom"} <= set(dev)
    assert set(dev) <= {"null", "zero", "full", "random", "urandom", "fd", "stdin", "stdout", "stderr"}
    assert bulkhead.call_text("probe", "read_file", {"path": str(bulkhead.config_path)}) == "error: ENOENT"
    assert bulkhead.call_text("probe", "write_file", {"path": "/probe/x", "text": "x"}) == "error: EROFS"
    assert bulkhead.call_text("probe", "write_file", {"path": "/usr/x", "text": "x"}) == "error: EROFS"
    assert bulkhead.call_text("probe", "write_file", {"path": "/tmp/x", "text": "x"}) == "wrote 1 bytes"


def test_app_has_no_network_but_loopback(hub):
    bulkhead = hub({"probe": manifests.probe()})

    devices = bulkhead.call_text("probe", "read_file", {"path": "/proc/net/dev"})

    interfaces = {line.split(":")[0].strip() for line in devices.splitlines()[2:]}
    assert interfaces == {"lo"}


def test_state_is_private_per_app(hub):
    bulkhead = hub({"alpha": manifests.probe("alpha"), "beta": manifests.probe("beta")})
    marker = secrets.token_hex(16)

    written = bulkhead.call_text("alpha", "write_file", {"path": "/state/marker", "text": marker})
    assert written == f"wrote {len(marker)} bytes"
    assert bulkhead.call_text("alpha", "read_file", {"path": "/state/marker"}) == marker

    host_copies = [path for path in bulkhead.state_dir.rglob("marker") if path.read_text() == marker]
    assert len(host_copies) == 1, f"expected alpha's marker once under {bulkhead.state_dir}"
    host_path = host_copies[0]

    assert bulkhead.call_text("beta", "read_file", {"path": "/state/marker"}) == "error: ENOENT"
    assert json.loads(bulkhead.call_text("beta", "list_dir", {"path": "/state"})) == []
    beta_reads_host_path = bulkhead.call_text("beta", "read_file", {"path": str(host_path)})
    assert beta_reads_host_path.startswith("error: "), "beta read alpha's state through its host path"
    assert beta_reads_host_path != marker

    alpha_app_pid = bulkhead.spoke("alpha")["app_pid"]
    for pid in json.loads(bulkhead.call_text("beta", "list_pids")) + [alpha_app_pid]:
        for path in (f"/proc/{pid}/root/state/marker", f"/proc/{pid}/cwd/marker", f"/proc/{pid}/root{host_path}"):
            seen = bulkhead.call_text("beta", "read_file", {"path": path})
            assert seen != marker, f"beta read alpha's marker through {path}"
            assert seen.startswith("error: "), f"beta read {path}: {seen[:80]!r}"


def test_state_owned_by_app_uid(hub):
    bulkhead = hub({"probe": manifests.probe()})
    spoke = bulkhead.warm("probe")
    bulkhead.call_text("probe", "write_file", {"path": "/state/owned", "text": "x"})

    [owned] = list(bulkhead.state_dir.rglob("owned"))
    app_uid = int(proc_status(spoke["app_pid"])["Uid"].split()[0])

    assert os.stat(owned).st_uid == app_uid
    assert os.stat(owned.parent).st_uid == app_uid


def open_files(pid: int) -> set[str]:
    """Return what each of the process's descriptors points to, as readlink shows it."""
    folder = f"/proc/{pid}/fd"
    targets = set()
    for entry in os.listdir(folder):
        try:
            targets.add(os.readlink(f"{folder}/{entry}"))
        except FileNotFoundError:
            continue
    return targets


def test_app_holds_no_channel_of_its_runtime(hub):
    """The runtime's hub channel (fd 3) and egress channel (fd 4) are sockets the app must not
    hold: with them it could write frames into the hub's connection."""
    allow = ["api.test:8080"]
    bulkhead = hub({"probe": manifests.probe(), "net": manifests.netprobe("net", "egress", allow)})
    for app, channels in (("probe", (3,)), ("net", (3, 4))):
        spoke = bulkhead.warm(app)
        runtime = open_files(spoke["pid"])
        for fd in channels:
            channel = os.readlink(f"/proc/{spoke['pid']}/fd/{fd}")
            assert channel.startswith("socket:"), f"{app}: the runtime's fd {fd} is {channel}, not its channel"
            assert channel in runtime
            held = open_files(spoke["app_pid"])
            assert channel not in held, f"{app}: the app holds the runtime's fd {fd} channel {channel}: {sorted(held)}"
