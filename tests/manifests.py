"""App manifests for the end-to-end tests: the example apps, the probe and the third-party servers.

The third-party apps come from tests/setup.sh: mcp-server-time in a venv at build/apps/mcp-time and
@modelcontextprotocol/server-filesystem under build/apps/mcp-fs. Every path is resolved first,
because the hub rejects mount sources that contain a symlink. They are mounted at fixed targets under
/opt, because the checkout may sit under /tmp, which is the sandbox's own tmpfs and takes no mounts.
A venv's interpreter finds its pyvenv.cfg beside the path it is run by, so the venv works from there.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

from harness import BUILD, REPO, HubError, render_toml

TIME_VENV = (BUILD / "apps" / "mcp-time").resolve()
FS_PREFIX = (BUILD / "apps" / "mcp-fs").resolve()
FS_ENTRY = FS_PREFIX / "node_modules" / "@modelcontextprotocol" / "server-filesystem" / "dist" / "index.js"
PROBE_DIR = (REPO / "tests" / "apps").resolve()
EXAMPLES_DIR = REPO / "config" / "apps.d"
SETUP_HINT = "run tests/setup.sh (or make test) to install it"
# Where the third-party installs appear inside the sandbox.
TIME_TARGET = Path("/opt/mcp-time")
FS_TARGET = Path("/opt/mcp-fs")


def example(name: str) -> str:
    """Return the text of an example app's manifest from config/apps.d."""
    path = EXAMPLES_DIR / f"{name}.toml"
    if not path.is_file():
        raise HubError(f"missing example manifest {path}")
    return path.read_text()


@functools.cache
def python_base_prefix() -> Path:
    """Return sys.base_prefix of the mcp-time venv's interpreter, the install its venv links to."""
    python = TIME_VENV / "bin" / "python"
    if not python.exists():
        raise HubError(f"missing {python}; {SETUP_HINT}")
    done = subprocess.run(
        [str(python), "-c", "import sys; print(sys.base_prefix)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(done.stdout.strip()).resolve()


def python_mounts() -> list[dict]:
    """Return read-only mounts of the mcp-time venv and, unless it is under /usr, its base interpreter."""
    mounts = [{"source": str(TIME_VENV), "target": str(TIME_TARGET)}]
    base = python_base_prefix()
    if not base.is_relative_to("/usr"):
        mounts.append({"source": str(base)})
    return mounts


def probe(name: str = "probe", persistent: bool = True) -> str:
    """Return a manifest that runs tests/apps/probe.py, mounted at /probe, under the name given."""
    return render_toml(
        {
            "name": name,
            "description": "Test probe that reports what an app can see from inside its sandbox.",
            "command": str(TIME_TARGET / "bin" / "python"),
            "args": ["/probe/probe.py"],
            "state": {"persistent": persistent},
            "limits": {"memory": "256MiB", "call_timeout": "60s"},
            "mounts": [*python_mounts(), {"source": str(PROBE_DIR), "target": "/probe"}],
        }
    )


def repo(name: str, data_dir: Path, tools: list[str], destructive: list[str], confidential: bool) -> str:
    """Return a manifest that runs tests/apps/repo.py on the repository in data_dir, mounted at /repo."""
    return render_toml(
        {
            "name": name,
            "description": "Test repository with files, issues and pull requests.",
            "command": str(TIME_TARGET / "bin" / "python"),
            "args": ["/probe/repo.py"],
            "limits": {"memory": "256MiB", "call_timeout": "60s"},
            "mounts": [
                *python_mounts(),
                {"source": str(PROBE_DIR), "target": "/probe"},
                {"source": str(data_dir.resolve()), "target": "/repo"},
            ],
            "tools": {"expose": tools, "destructive": destructive},
            "data": {"confidential": confidential},
        }
    )


def catalog_app(name: str, data_dir: Path, description: str = "Test app whose tool catalog a test can change.") -> str:
    """Return a manifest that runs tests/apps/catalog_app.py with data_dir mounted at /catalog."""
    return render_toml(
        {
            "name": name,
            "description": description,
            "command": str(TIME_TARGET / "bin" / "python"),
            "args": ["/probe/catalog_app.py"],
            "limits": {"memory": "256MiB", "call_timeout": "60s"},
            "mounts": [
                *python_mounts(),
                {"source": str(PROBE_DIR), "target": "/probe"},
                {"source": str(data_dir.resolve()), "target": "/catalog"},
            ],
        }
    )


def mcp_time() -> str:
    """Return a manifest for mcp-server-time from PyPI, run unchanged from its venv as a module."""
    entry = TIME_VENV / "bin" / "mcp-server-time"
    if not entry.exists():
        raise HubError(f"missing {entry}; {SETUP_HINT}")
    return render_toml(
        {
            "name": "time",
            "description": "Tells the current time and converts times between IANA time zones.",
            "command": str(TIME_TARGET / "bin" / "python"),
            "args": ["-m", "mcp_server_time"],
            "limits": {"memory": "256MiB"},
            "mounts": python_mounts(),
        }
    )


def node_binary() -> Path:
    found = shutil.which("node")
    if found is None:
        raise HubError("node is not on PATH; install Node.js 20 or later")
    node = Path(found).resolve()
    if not node.is_relative_to("/usr"):
        raise HubError(f"node resolves to {node}, outside /usr, so the sandbox's system mounts miss it")
    return node


def mcp_filesystem(data_dir: Path) -> str:
    """Return a manifest for server-filesystem from npm, serving data_dir mounted read-only at /data."""
    if not FS_ENTRY.exists():
        raise HubError(f"missing {FS_ENTRY}; {SETUP_HINT}")
    return render_toml(
        {
            "name": "files",
            "description": "Lists and reads the files of a shared folder.",
            "command": str(node_binary()),
            "args": [str(FS_TARGET / FS_ENTRY.relative_to(FS_PREFIX)), "/data"],
            "limits": {"memory": "512MiB"},
            "mounts": [
                {"source": str(FS_PREFIX), "target": str(FS_TARGET)},
                {"source": str(data_dir.resolve()), "target": "/data"},
            ],
        }
    )


def hostile(memory: str = "64MiB", pids: int = 600, cpu: float = 0.25, call_timeout: str = "10s") -> str:
    """Return a manifest for bulkhead-app-hostile, the escape suite's attacker, with explicit limits.

    pids leaves room for 500 orphans plus the app's threads, memory is small so that the OOM case
    is quick, and the CPU share is low enough that a spin shows the limit.
    """
    return render_toml(
        {
            "name": "hostile",
            "description": "Test-only app whose tools try to escape the sandbox.",
            "command": "bulkhead-app-hostile",
            "state": {"persistent": True},
            "limits": {"memory": memory, "pids": pids, "cpu": cpu, "call_timeout": call_timeout},
        }
    )


def netprobe(name: str, mode: str, allow: list[str] | None = None, max_connections: int | None = None) -> str:
    """Return a manifest that runs tests/apps/netprobe.py with the network mode and allowlist given.

    curl comes from the host's /usr, which every spoke mounts read-only.
    """
    network: dict = {"mode": mode}
    if allow is not None:
        network["allow"] = allow
    if max_connections is not None:
        network["max_connections"] = max_connections
    return render_toml(
        {
            "name": name,
            "description": "Test app whose tools fetch URLs, resolve names and open sockets.",
            "command": str(TIME_TARGET / "bin" / "python"),
            "args": ["/probe/netprobe.py"],
            "limits": {"memory": "256MiB", "call_timeout": "60s"},
            "mounts": [*python_mounts(), {"source": str(PROBE_DIR), "target": "/probe"}],
            "network": network,
        }
    )


def python_app(name: str, description: str, script: str, *args: str, **tables) -> str:
    """Return a manifest that runs a test app of tests/apps with the Python of the mcp venv, with
    256 MiB of memory, a 60 s call timeout, and any further manifest tables given as keywords."""
    return render_toml(
        {
            "name": name,
            "description": description,
            "command": str(TIME_TARGET / "bin" / "python"),
            "args": [f"/probe/{script}", *args],
            **tables,
            "limits": {"memory": "256MiB", "call_timeout": "60s"},
            "mounts": [*python_mounts(), {"source": str(PROBE_DIR), "target": "/probe"}],
        }
    )


def ride(name: str, description: str) -> str:
    """Return a manifest that runs tests/apps/rides.py as the ride app name (quick_ride or metro_hail)."""
    return python_app(name, description, "rides.py", name, state={"persistent": True})


def exposure(name: str, description: str, confidential: bool) -> str:
    """Return a manifest that runs tests/apps/exposure.py as the health or the travel app."""
    return python_app(name, description, "exposure.py", name, state={"persistent": True}, data={"confidential": confidential})


def sampler(name: str) -> str:
    """Return a manifest that runs tests/apps/sampler.py, an app that sends sampling requests."""
    return python_app(name, "Test app whose tool asks the hub's LLM for a completion.", "sampler.py")
