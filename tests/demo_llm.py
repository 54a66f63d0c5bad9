"""The scripted planner of `make demo`: serves tests/scripted_llm.py on 127.0.0.1 with one plan that
spans the calendar and notes example apps, writes its base URL to the file named by the first
argument, and serves until it is terminated."""

import json
import signal
import sys
import threading
from pathlib import Path

from scripted_llm import PLANNER, ScriptedLLM

PLAN = {
    "steps": [
        {"id": "s1", "app": "calendar", "tool": "list_events", "arguments": {}},
        {"id": "s2", "app": "notes", "tool": "add_note", "arguments": {"title": "My calendar", "body": "{{s1}}"}},
    ],
    "answer": "{{s2}}",
}

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: demo_llm.py URL_FILE")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with ScriptedLLM() as llm:
        llm.add(PLANNER, json.dumps(PLAN))
        Path(sys.argv[1]).write_text(llm.base_url)
        stop.wait()
