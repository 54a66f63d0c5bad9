"""A test-only MCP stdio server whose tools use the network from inside a spoke.

The egress tests run it with network mode "egress" or "none". Its tools fetch URLs with curl and
with urllib through the proxy variables the hub sets, send raw requests to the proxy, look names
up, connect past the proxy and send UDP datagrams. Every tool returns a JSON object that describes
the outcome, and none raises, so that a refusal reads as data in the test.
"""

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

try:
    from mcp.server.mcpserver import MCPServer as Server  # mcp 2.x
except ImportError:
    from mcp.server.fastmcp import FastMCP as Server  # mcp 1.x

CURL = "/usr/bin/curl"
PROXY = ("127.0.0.1", 3128)
TIMEOUT = 10.0
server = Server("netprobe")


@server.tool()
def fetch_curl(url: str) -> str:
    """Fetch a URL with curl, which reads the proxy variables, and return its exit code, HTTP status and body."""
    done = subprocess.run(
        [CURL, "--silent", "--show-error", "--max-time", str(int(TIMEOUT)), "--output", "-", "--write-out", "\n%{http_code}", url],
        capture_output=True,
        text=True,
        timeout=TIMEOUT + 5,
        check=False,
    )
    body, _, status = done.stdout.rpartition("\n")
    return json.dumps({"exit": done.returncode, "status": int(status or 0), "body": body, "stderr": done.stderr.strip()})


@server.tool()
def fetch_urllib(url: str) -> str:
    """Fetch a URL with urllib, which reads the proxy variables, and return the HTTP status and body."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return json.dumps({"status": response.status, "body": response.read().decode()})
    except urllib.error.HTTPError as error:
        return json.dumps({"status": error.code, "body": error.read().decode(errors="replace")})
    except OSError as error:
        return json.dumps({"status": 0, "error": repr(error)})


@server.tool()
def proxy_request(head: str) -> str:
    """Send head (code points 0 to 255, sent as those bytes) to the proxy and return its whole response."""
    try:
        with socket.create_connection(PROXY, timeout=TIMEOUT) as connection:
            connection.sendall(head.encode("latin-1"))
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
    except OSError as error:
        return json.dumps({"status": 0, "error": repr(error)})
    status_line, _, rest = answer.decode(errors="replace").partition("\r\n")
    parts = status_line.split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return json.dumps({"status": status, "status_line": status_line, "body": rest.partition("\r\n\r\n")[2]})


@server.tool()
def proxy_request_while_holding(head: str, hold: int) -> str:
    """Open hold idle connections to the proxy, then send head on one more, and return its response."""
    held = [socket.create_connection(PROXY, timeout=TIMEOUT) for _ in range(hold)]
    try:
        # Give the hub time to receive the idle connections before the request arrives.
        time.sleep(0.5)
        return proxy_request(head)
    finally:
        for connection in held:
            connection.close()


@server.tool()
def resolve(name: str) -> str:
    """Look a name up with getaddrinfo and return the addresses or the error, and the time it took."""
    started = time.monotonic()
    try:
        found = sorted({info[4][0] for info in socket.getaddrinfo(name, 80, proto=socket.IPPROTO_TCP)})
        outcome = {"addresses": found}
    except OSError as error:
        outcome = {"addresses": [], "error": repr(error)}
    outcome["seconds"] = time.monotonic() - started
    return json.dumps(outcome)


@server.tool()
def raw_connect(host: str, port: int, payload: str) -> str:
    """Open a TCP connection without the proxy and send payload; return whether it connected."""
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as connection:
            connection.sendall(payload.encode())
        return json.dumps({"connected": True})
    except OSError as error:
        return json.dumps({"connected": False, "error": repr(error)})


@server.tool()
def udp_send(host: str, port: int, payload: str) -> str:
    """Send one UDP datagram and return whether the send succeeded."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(payload.encode(), (host, port))
        return json.dumps({"sent": True})
    except OSError as error:
        return json.dumps({"sent": False, "error": repr(error)})


@server.tool()
def read_text(path: str) -> str:
    """Return the text of a file inside the sandbox, or an empty result if it is missing."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.dumps({"exists": True, "text": file.read()})
    except FileNotFoundError:
        return json.dumps({"exists": False, "text": ""})


@server.tool()
def proxy_env() -> str:
    """Return the proxy variables of this process's environment."""
    names = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"]
    return json.dumps({name: os.environ.get(name) for name in names + [name.lower() for name in names]})


if __name__ == "__main__":
    server.run()
