"""A killed app fails the call in flight with UNAVAILABLE, and the next call starts it again."""

import json
import os
import signal
import threading
import time

import grpc

import manifests
from grpc_client import agent, hub_pb2, open_channel
from harness import proc_status


def test_killed_app_fails_call_then_recovers(hub):
    bulkhead = hub({"probe": manifests.probe()})
    old = bulkhead.warm("probe")
    outcome = {}

    with open_channel(bulkhead.socket) as channel:
        stub = agent(channel)

        def call_sleep():
            request = hub_pb2.CallToolRequest(app="probe", tool="sleep", arguments_json=json.dumps({"seconds": 30}))
            try:
                outcome["response"] = stub.CallTool(request, timeout=60)
            except grpc.RpcError as error:
                outcome["error"] = error
            outcome["finished"] = time.monotonic()

        caller = threading.Thread(target=call_sleep, daemon=True)
        caller.start()
        # Give the call time to reach the app. A 30 s sleep is still running after 1 s.
        time.sleep(1.0)
        assert caller.is_alive(), f"sleep call ended early: {outcome}"
        killed_at = time.monotonic()
        os.kill(old["app_pid"], signal.SIGKILL)
        caller.join(timeout=15)

    assert not caller.is_alive(), "the call did not end within 15 s of SIGKILL to the app"
    assert "error" in outcome, f"the call succeeded after its app was killed: {outcome.get('response')}"
    error = outcome["error"]
    assert error.code() == grpc.StatusCode.UNAVAILABLE, f"{error.code()}: {error.details()}"
    assert "probe" in error.details()
    assert outcome["finished"] - killed_at < 5.0

    assert bulkhead.call_text("probe", "getpid").isdigit()
    new = bulkhead.spoke("probe")
    assert new["state"] == "ready"
    assert new["app_pid"] not in (0, old["app_pid"])
    assert proc_status(new["app_pid"])["Seccomp"] == "2"
