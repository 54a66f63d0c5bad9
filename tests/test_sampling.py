"""MCP sampling end to end: an app's sampling/createMessage goes from its spoke over the ask channel
to the hub, which answers with the scripted OpenAI-compatible server of tests/scripted_llm.py.

The sampler app (tests/apps/sampler.py) runs as two apps, writer and other. The tests check that
the model sees only the sampling app's own messages, that the per-app rate limit stops requests
before they reach the model, that each request leaves an audit record, and that a hub with sampling
turned off, or with the lexical backend, returns a clear error to the app.
"""

from __future__ import annotations

import json

import grpc
import pytest

import manifests
from grpc_client import agent, hub_pb2, open_channel
from scripted_llm import ScriptedLLM, prompt_text

# The app's system prompt, which is also the scripted server's marker for its requests.
SYSTEM_PROMPT = "You write one short haiku for the sampler test app."
PROMPT = "Write a haiku about green tea."
HAIKU = "Steam over the cup / leaves unfold in quiet heat / spring in a small bowl"
OTHER_OUTPUT = "the other app's private ledger: account 4417"


@pytest.fixture
def llm():
    with ScriptedLLM() as server:
        yield server


def start_hub(hub, llm: ScriptedLLM | None = None, **limits):
    bulkhead = hub({"writer": manifests.sampler("writer"), "other": manifests.sampler("other")}, start=False)
    if llm is not None:
        with open(bulkhead.config_path, "a") as config:
            config.write(llm.hub_config(**limits))
    bulkhead.start()
    return bulkhead


def call(bulkhead, app: str, tool: str, arguments: dict, session: str = "") -> hub_pb2.CallToolResponse:
    with open_channel(bulkhead.socket) as channel:
        request = hub_pb2.CallToolRequest(app=app, tool=tool, arguments_json=json.dumps(arguments), session_id=session)
        return agent(channel).CallTool(request, timeout=90)


def complete(bulkhead, session: str = "", **arguments) -> hub_pb2.CallToolResponse:
    return call(bulkhead, "writer", "complete", {"prompt": PROMPT, **arguments}, session)


def failed_complete(bulkhead, app: str = "writer", **arguments) -> str:
    """Call complete, expecting the app to pass on the MCP error of its failed sampling request,
    and return the error's message as the hub reports it."""
    with pytest.raises(grpc.RpcError) as raised:
        call(bulkhead, app, "complete", {"prompt": PROMPT, **arguments})
    assert raised.value.code() == grpc.StatusCode.UNKNOWN, raised.value
    message = raised.value.details()
    assert "sampling failed: " in message, message
    return message


def sampling_records(bulkhead) -> list[dict]:
    lines = (bulkhead.state_dir / "audit.log").read_text().splitlines()
    return [record["fields"] for record in map(json.loads, lines) if record["kind"] == "sampling"]


def test_reply_uses_only_app_messages(hub, llm):
    llm.add(SYSTEM_PROMPT, HAIKU)
    bulkhead = start_hub(hub, llm)
    echoed = call(bulkhead, "other", "echo", {"text": OTHER_OUTPUT}, session="tea")
    assert echoed.text == OTHER_OUTPUT, echoed

    response = complete(bulkhead, session="tea", max_tokens=40)

    assert not response.is_error, response
    assert response.text == HAIKU
    assert len(llm.requests) == 1, llm.requests
    request = llm.requests[0]
    expected = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": PROMPT}]
    assert request["messages"] == expected
    assert OTHER_OUTPUT not in prompt_text(request["messages"])
    assert "tools" not in request, request
    assert request["max_tokens"] == 40
    assert request["model"] == "scripted"


def test_answered_request_is_audited(hub, llm):
    llm.add(SYSTEM_PROMPT, HAIKU)
    bulkhead = start_hub(hub, llm)

    assert complete(bulkhead).text == HAIKU

    records = sampling_records(bulkhead)
    assert len(records) == 1, records
    assert records[0]["app"] == "writer"
    assert records[0]["outcome"] == "answered"
    assert records[0]["model"] == "scripted"
    assert records[0]["messages"] == 1
    assert PROMPT not in json.dumps(records[0])


def test_rate_limit_stops_request(hub, llm):
    llm.add(SYSTEM_PROMPT, HAIKU, HAIKU, HAIKU)
    bulkhead = start_hub(hub, llm, sampling_per_minute=2)

    first, second = complete(bulkhead), complete(bulkhead)
    third = failed_complete(bulkhead)

    assert first.text == HAIKU, first
    assert second.text == HAIKU, second
    assert "limit of 2 sampling requests per minute" in third, third
    assert "[llm] sampling_per_minute" in third, third
    assert len(llm.requests) == 2, llm.requests
    outcomes = [record["outcome"] for record in sampling_records(bulkhead)]
    assert outcomes == ["answered", "answered", "rate_limited"]


def test_limit_is_per_app(hub, llm):
    llm.add(SYSTEM_PROMPT, HAIKU, HAIKU)
    bulkhead = start_hub(hub, llm, sampling_per_minute=1)

    assert complete(bulkhead).text == HAIKU
    assert "limit of 1 sampling requests per minute" in failed_complete(bulkhead)
    other = call(bulkhead, "other", "complete", {"prompt": PROMPT})

    assert other.text == HAIKU, other
    apps = [(record["app"], record["outcome"]) for record in sampling_records(bulkhead)]
    assert apps == [("writer", "answered"), ("writer", "rate_limited"), ("other", "answered")]


def test_zero_per_minute_turns_sampling_off(hub, llm):
    llm.add(SYSTEM_PROMPT, HAIKU)
    bulkhead = start_hub(hub, llm, sampling_per_minute=0)

    message = failed_complete(bulkhead)

    assert "sampling is turned off" in message, message
    assert "sampling_per_minute is 0" in message, message
    assert llm.requests == []
    assert [record["outcome"] for record in sampling_records(bulkhead)] == ["disabled"]


def test_image_content_is_rejected(hub, llm):
    llm.add(SYSTEM_PROMPT, HAIKU)
    bulkhead = start_hub(hub, llm)

    message = failed_complete(bulkhead, image=True)

    assert '"image" content' in message, message
    assert "text content only" in message, message
    assert llm.requests == []
    assert [record["outcome"] for record in sampling_records(bulkhead)] == ["rejected"]


def test_lexical_backend_returns_clear_error(hub):
    bulkhead = start_hub(hub)

    message = failed_complete(bulkhead)

    assert "lexical backend cannot answer free text" in message, message
    assert 'backend = "openai"' in message, message
    assert PROMPT not in message
    assert [record["outcome"] for record in sampling_records(bulkhead)] == ["failed"]
