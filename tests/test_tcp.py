"""The hub's TCP listener: served only with a bearer token, and every request must carry it."""

import re
import secrets
import subprocess

import grpc
import pytest

import manifests
from grpc_client import hub_pb2, hub_pb2_grpc
from harness import RELEASE, wait_until

TCP_LOG_LINE = re.compile(r"serving gRPC on TCP.*address=(127\.0\.0\.1:\d+)")


def with_tcp(config_text: str, token_file) -> str:
    extra = f'tcp = "127.0.0.1:0"\ntoken_file = "{token_file}"\n'
    assert "[server]\n" in config_text
    return config_text.replace("[server]\n", "[server]\n" + extra, 1)


def tcp_address(bulkhead) -> str:
    def find():
        match = TCP_LOG_LINE.search(bulkhead.log_path.read_text(errors="replace"))
        return match.group(1) if match else None

    address = wait_until(find, timeout=10)
    assert address, f"the hub did not log its TCP address:\n{bulkhead.log_tail()}"
    return address


def list_apps(address: str, metadata=None):
    with grpc.insecure_channel(address) as channel:
        stub = hub_pb2_grpc.AgentServiceStub(channel)
        return stub.ListApps(hub_pb2.ListAppsRequest(), metadata=metadata, timeout=10)


def test_tcp_requires_bearer_token(hub):
    bulkhead = hub({"notes": manifests.example("notes")}, start=False)
    token = secrets.token_hex(16)
    token_file = bulkhead.root / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    bulkhead.config_path.write_text(with_tcp(bulkhead.config_text(), token_file))
    bulkhead.start()
    address = tcp_address(bulkhead)

    with pytest.raises(grpc.RpcError) as missing:
        list_apps(address)
    assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "missing bearer token" in missing.value.details()

    with pytest.raises(grpc.RpcError) as wrong:
        list_apps(address, metadata=[("authorization", "Bearer " + "x" * len(token))])
    assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "invalid bearer token" in wrong.value.details()

    reply = list_apps(address, metadata=[("authorization", f"Bearer {token}")])
    assert [app.name for app in reply.apps] == ["notes"]


def test_tcp_without_token_is_rejected(hub):
    bulkhead = hub({}, start=False)
    text = bulkhead.config_text().replace("[server]\n", '[server]\ntcp = "127.0.0.1:0"\n', 1)
    bulkhead.config_path.write_text(text)

    result = subprocess.run(
        [str(RELEASE / "bulkheadd"), "--config", str(bulkhead.config_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode != 0
    assert "token_file" in result.stderr, result.stderr
    assert not bulkhead.socket.exists()
