"""A test-only MCP stdio server that reports what it can see from inside its sandbox.

The end-to-end suite registers it as an app and calls its tools to check the sandbox from the
inside: filesystem views, /proc, process ids and the exit of child processes. It runs with the
interpreter of the mcp-server-time venv, whose `mcp` package it uses. Filesystem errors come back
as the text "error: <errno name>" so that tests can assert on the exact errno.
"""

import errno
import json
import os
import subprocess
import time

try:
    from mcp.server.mcpserver import MCPServer as Server  # mcp 2.x
except ImportError:
    from mcp.server.fastmcp import FastMCP as Server  # mcp 1.x

server = Server("probe")


def errno_text(error: OSError) -> str:
    return "error: " + errno.errorcode.get(error.errno, str(error.errno))


@server.tool()
def read_file(path: str) -> str:
    """Read a text file and return its content, or "error: <errno name>"."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read()
    except OSError as error:
        return errno_text(error)


@server.tool()
def write_file(path: str, text: str) -> str:
    """Write text to a file, replacing it, and return "wrote <n> bytes" or "error: <errno name>"."""
    try:
        with open(path, "w", encoding="utf-8") as file:
            written = file.write(text)
        return f"wrote {written} bytes"
    except OSError as error:
        return errno_text(error)


@server.tool()
def list_dir(path: str) -> str:
    """Return the sorted entry names of a directory as a JSON array, or "error: <errno name>"."""
    try:
        return json.dumps(sorted(os.listdir(path)))
    except OSError as error:
        return errno_text(error)


@server.tool()
def proc_status() -> str:
    """Return the text of /proc/self/status."""
    with open("/proc/self/status", encoding="utf-8") as file:
        return file.read()


@server.tool()
def list_pids() -> str:
    """Return the numeric entries of /proc, which are the visible process ids, as a JSON array."""
    return json.dumps(sorted(int(name) for name in os.listdir("/proc") if name.isdigit()))


@server.tool()
def sleep(seconds: float) -> str:
    """Sleep for the given number of seconds, then return "slept <seconds>"."""
    time.sleep(seconds)
    return f"slept {seconds}"


@server.tool()
def run(argv: list[str]) -> str:
    """Run a program without a shell, with a 20 s limit, and return {"code", "stdout", "stderr"} as JSON.

    A program that cannot be started gives code -1 and the errno name in stderr.
    """
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except OSError as error:
        return json.dumps({"code": -1, "stdout": "", "stderr": errno_text(error)})
    return json.dumps({"code": done.returncode, "stdout": done.stdout, "stderr": done.stderr})


@server.tool()
def getpid() -> str:
    """Return the probe's process id as seen inside its own PID namespace."""
    return str(os.getpid())


if __name__ == "__main__":
    server.run()
