"""Unchanged MCP servers from PyPI and npm, run as spokes: mcp-server-time and server-filesystem."""

import json
from datetime import datetime, timezone

import manifests

FIXTURE_FILES = {
    "hello.txt": "Hello from the shared folder.\n",
    "notes/todo.md": "# Todo\n\n- water the plants\n",
}


def make_fixture(root):
    """Create the shared folder with FIXTURE_FILES, readable by the app's unprivileged uid."""
    data = root / "data"
    for relative, text in FIXTURE_FILES.items():
        path = data / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for path in [data, *data.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return data


def test_time_server_returns_now(hub):
    bulkhead = hub({"time": manifests.mcp_time()})

    text = bulkhead.call_text("time", "get_current_time", {"timezone": "UTC"})

    reply = json.loads(text)
    assert reply["timezone"] == "UTC"
    reported = datetime.fromisoformat(reply["datetime"])
    assert reported.utcoffset().total_seconds() == 0
    drift = abs((datetime.now(timezone.utc) - reported).total_seconds())
    assert drift < 5, f"the time server is {drift:.1f} s off: {text}"


def test_time_server_lists_its_tools(hub):
    bulkhead = hub({"time": manifests.mcp_time()})

    tools = {tool["name"]: tool for tool in bulkhead.cli_json("tools", "time")}

    assert set(tools) == {"get_current_time", "convert_time"}
    assert tools["get_current_time"]["app"] == "time"
    assert "timezone" in tools["get_current_time"]["input_schema"]["properties"]


def test_filesystem_server_reads_shared_folder(hub):
    bulkhead = hub({}, start=False)
    data = make_fixture(bulkhead.root)
    bulkhead.write_manifest("files", manifests.mcp_filesystem(data))
    bulkhead.start()

    tools = {tool["name"] for tool in bulkhead.cli_json("tools", "files")}
    read_tool = "read_text_file" if "read_text_file" in tools else "read_file"
    assert read_tool in tools, f"no file reading tool among {sorted(tools)}"
    assert "list_directory" in tools

    listing = bulkhead.call_text("files", "list_directory", {"path": "/data"})
    content = bulkhead.call_text("files", read_tool, {"path": "/data/hello.txt"})
    nested = bulkhead.call_text("files", read_tool, {"path": "/data/notes/todo.md"})

    assert sorted(listing.splitlines()) == ["[DIR] notes", "[FILE] hello.txt"]
    assert content == FIXTURE_FILES["hello.txt"]
    assert nested == FIXTURE_FILES["notes/todo.md"]


def test_filesystem_server_cannot_write_read_only_mount(hub):
    bulkhead = hub({}, start=False)
    data = make_fixture(bulkhead.root)
    bulkhead.write_manifest("files", manifests.mcp_filesystem(data))
    bulkhead.start()

    code, _, err = bulkhead.cli("call", "files", "write_file", "--args", json.dumps({"path": "/data/new.txt", "content": "x"}))

    assert code == 1
    assert err.startswith("error: tool files/write_file failed: ")
    assert not (data / "new.txt").exists()
