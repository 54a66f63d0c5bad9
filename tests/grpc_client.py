"""Python gRPC access to a hub, through the stubs that tests/setup.sh generates into build/pygen."""

from __future__ import annotations

import grpc

from bulkhead.v1 import hub_pb2, hub_pb2_grpc  # noqa: F401  (re-exported for the tests)


# For a unix: target, grpc-core (1.85) sends the percent-encoded socket path as :authority. The
# hub's HTTP/2 server (h2 0.4 with http 1.x) rejects percent-encoding in a host and resets the
# stream with PROTOCOL_ERROR, so Python clients must name a plain authority.
CHANNEL_OPTIONS = [("grpc.default_authority", "localhost")]


def open_channel(socket_path) -> grpc.Channel:
    """Open a channel to the hub's Unix socket and wait up to 10 s for it to connect."""
    channel = grpc.insecure_channel(f"unix:{socket_path}", options=CHANNEL_OPTIONS)
    grpc.channel_ready_future(channel).result(timeout=10)
    return channel


def agent(channel: grpc.Channel) -> hub_pb2_grpc.AgentServiceStub:
    return hub_pb2_grpc.AgentServiceStub(channel)


def operator(channel: grpc.Channel) -> hub_pb2_grpc.OperatorServiceStub:
    return hub_pb2_grpc.OperatorServiceStub(channel)
