"""After SIGKILL of bulkheadd, the next start removes the spoke cgroups and processes of the killed run
and serves the same apps from the same state directory."""

import os
import signal
import subprocess
from pathlib import Path

import manifests
from harness import wait_until

EXAMPLES = ("notes", "calendar")


def test_restart_after_sigkill_removes_leftovers(hub):
    bulkhead = hub({name: manifests.example(name) for name in EXAMPLES})
    bulkhead.call_json("notes", "add_note", {"title": "Kept", "body": "survives a hub crash"})
    for name in EXAMPLES:
        bulkhead.warm(name)
    bulkhead.record_spokes()
    cgroups = set(bulkhead.spoke_cgroups)
    assert cgroups, "the spokes' cgroups were not found"
    ledger = sorted(path.name for path in (bulkhead.state_dir / "spokes").iterdir())
    assert len(ledger) == len(EXAMPLES), f"expected one ledger entry a spoke, found {ledger}"

    bulkhead.process.send_signal(signal.SIGKILL)
    bulkhead.process.wait(10)
    # The launchers die by their parent-death signal, and each spoke's PID namespace with them.
    assert wait_until(lambda: not any(process.alive() for process in bulkhead.seen), 10.0), (
        f"spoke processes outlived the killed hub: {[p for p in bulkhead.seen if p.alive()]}"
    )
    left = sorted(path for path in cgroups if path.exists())
    assert left, "the killed hub removed its spoke cgroups, so there is nothing to reconcile"

    # A process that escaped the parent-death signal stays in its spoke's cgroup until reconciled.
    straggler = subprocess.Popen(["sleep", "120"])
    try:
        procs = next(path for path in left if (path / "cgroup.procs").exists()) / "cgroup.procs"
        procs.write_text(str(straggler.pid))

        bulkhead.start()
        assert straggler.wait(10) == -signal.SIGKILL, "the restarted hub did not kill the leftover spoke process"
    finally:
        if straggler.poll() is None:
            straggler.kill()
            straggler.wait()

    assert sorted(path for path in cgroups if path.exists()) == [], "leftover spoke cgroups were not removed"
    assert sorted(os.listdir(bulkhead.state_dir / "spokes")) == []
    assert "removed the spokes left by the previous run" in bulkhead.log_path.read_text()

    names = [app["name"] for app in bulkhead.cli_json("apps", "list")["apps"]]
    assert names == sorted(EXAMPLES)
    assert "Kept" in bulkhead.call_text("notes", "list_notes")


def test_clean_stop_leaves_empty_ledger(hub):
    bulkhead = hub({"notes": manifests.example("notes")})
    bulkhead.warm("notes")
    ledger = Path(bulkhead.state_dir) / "spokes"
    assert len(list(ledger.iterdir())) == 1

    bulkhead.stop()
    assert list(ledger.iterdir()) == []
