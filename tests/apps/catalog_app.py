"""A test-only MCP stdio server whose tool catalog comes from a file, so that a test can change it.

The folder mounted at /catalog contains description.txt, the description of the echo tool. The
server reads it when it starts. Its reload_catalog tool reads it again, replaces echo's
description and sends notifications/tools/list_changed, as a server whose tools change while it
runs would.
"""

from pathlib import Path

try:
    from mcp.server.mcpserver import Context
    from mcp.server.mcpserver import MCPServer as Server  # mcp 2.x
except ImportError:
    from mcp.server.fastmcp import Context  # mcp 1.x
    from mcp.server.fastmcp import FastMCP as Server

DESCRIPTION_FILE = Path("/catalog/description.txt")
server = Server("catalog")


def echo(text: str, times: int = 1) -> str:
    return " ".join([text] * times)


def add_echo() -> None:
    server.add_tool(echo, name="echo", description=DESCRIPTION_FILE.read_text().strip())


@server.tool()
async def reload_catalog(ctx: Context) -> str:
    """Read the echo tool's description again from /catalog/description.txt and announce the change."""
    server.remove_tool("echo")
    add_echo()
    await ctx.session.send_tool_list_changed()
    return "catalog reloaded"


add_echo()

if __name__ == "__main__":
    server.run()
