"""A scripted LLM for the query tests: a real HTTP server on 127.0.0.1 that speaks the OpenAI
chat-completions protocol, so the hub's openai backend is what the tests exercise.

A test adds rules. Each rule has a marker that the request's system message must contain, such as
PLANNER or context("metro_hail"), and a queue of replies used in order. A reply is text, a list of
tool calls made with call(), or a function of the request's messages that returns either. Such a
function lets the server act as an adversarial model that follows any instruction it reads.

The server records every request's messages, so a test can check what each prompt contained. It
can add a fixed latency to every reply.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The start of the planner's system message.
PLANNER = "You are the planner of bulkhead"

_call_ids = itertools.count(1)


def context(app: str) -> str:
    """Return the marker of the system message of app's own context."""
    return f"You are the assistant of the app {app} inside"


def call(name: str, arguments: dict | None = None, as_string: bool = True) -> dict:
    """Return one tool call. as_string=False sends the arguments as an object, as Ollama does."""
    arguments = arguments or {}
    return {
        "id": f"call_{next(_call_ids)}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments) if as_string else arguments},
    }


def prompt_text(messages: list[dict]) -> str:
    """Return every message's content joined, the text a model reads."""
    parts = []
    for message in messages:
        parts.append(str(message.get("content") or ""))
        for tool_call in message.get("tool_calls") or []:
            parts.append(str(tool_call["function"].get("arguments", "")))
    return "\n".join(parts)


def last_tool_result(messages: list[dict]) -> str:
    results = [message["content"] for message in messages if message.get("role") == "tool"]
    return results[-1] if results else ""


@dataclass
class Rule:
    marker: str
    replies: deque = field(default_factory=deque)


class ScriptedLLM:
    """The server. Use it as a context manager, or call start() and stop()."""

    def __init__(self, latency: float = 0.0):
        self.latency = latency
        self.rules: list[Rule] = []
        self.requests: list[dict] = []
        self.unmatched: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def add(self, marker: str, *replies) -> None:
        """Queue replies for requests whose system message contains marker."""
        self.rules.append(Rule(marker, deque(replies)))

    def start(self) -> "ScriptedLLM":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "ScriptedLLM":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def prompts(self, marker: str) -> list[str]:
        """Return the text of every recorded request whose system message contains marker."""
        return [prompt_text(request["messages"]) for request in self.requests if marker in system_text(request)]

    def hub_config(self, **limits) -> str:
        """Return an [llm] table for hub.toml that points the openai backend at this server."""
        lines = ["", "[llm]", 'backend = "openai"', f'base_url = "{self.base_url}"', 'model = "scripted"', 'timeout = "20s"', "retries = 0"]
        lines += [f"{key} = {value}" for key, value in limits.items()]
        return "\n".join(lines) + "\n"

    def _reply(self, request: dict) -> dict | None:
        system = system_text(request)
        with self._lock:
            self.requests.append(request)
            rule = next((rule for rule in self.rules if rule.marker in system and rule.replies), None)
            if rule is None:
                self.unmatched.append(system[:200])
                return None
            reply = rule.replies.popleft()
        if callable(reply):
            reply = reply(request["messages"])
        message = {"role": "assistant", "content": None}
        if isinstance(reply, str):
            message["content"] = reply
        else:
            message["tool_calls"] = reply
        return {"id": "scripted", "object": "chat.completion", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}

    def _handler(self):
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the name http.server requires)
                length = int(self.headers.get("Content-Length", "0"))
                request = json.loads(self.rfile.read(length) or b"{}")
                if scripted.latency:
                    time.sleep(scripted.latency)
                body = scripted._reply(request)
                status = 200
                if body is None:
                    status, body = 400, {"error": {"message": "no scripted reply is left for this request"}}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler


def system_text(request: dict) -> str:
    messages = request.get("messages") or []
    return str(messages[0].get("content") or "") if messages and messages[0].get("role") == "system" else ""
