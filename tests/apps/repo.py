"""A test-only MCP stdio server that serves a small code repository: its files, issues and pull
requests.

The flow tests register it twice, as a confidential private repository and as a public one. The
repository's content lives in the folder mounted at /repo: files under /repo/files and issues in
/repo/issues.json. create_pr appends the request to /repo/pulls.jsonl when that folder is
writable, and returns its number either way.
"""

import json
from pathlib import Path

try:
    from mcp.server.mcpserver import MCPServer as Server  # mcp 2.x
except ImportError:
    from mcp.server.fastmcp import FastMCP as Server  # mcp 1.x

ROOT = Path("/repo")
server = Server("repo")


@server.tool()
def list_issues() -> str:
    """Return the repository's open issues as JSON: a list of {number, title, body}."""
    path = ROOT / "issues.json"
    return path.read_text() if path.exists() else "[]"


@server.tool()
def get_file(path: str) -> str:
    """Return the text of one file of the repository, given its path inside the repository."""
    target = (ROOT / "files" / path).resolve()
    if not target.is_relative_to(ROOT / "files"):
        return "error: the path leaves the repository"
    return target.read_text()


@server.tool()
def create_pr(title: str, body: str) -> str:
    """Open a pull request with a title and a body, and return its number."""
    pulls = ROOT / "pulls.jsonl"
    number = 1
    try:
        with open(pulls, "a+", encoding="utf-8") as file:
            file.seek(0)
            number = len(file.readlines()) + 1
            file.write(json.dumps({"number": number, "title": title, "body": body}) + "\n")
    except OSError:
        pass
    return f"opened pull request #{number}: {title}"


if __name__ == "__main__":
    server.run()
