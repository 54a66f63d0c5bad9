"""A test-only MCP stdio server that asks its client for LLM completions with sampling/createMessage.

complete(prompt, image=False, max_tokens=64) sends one user message with prompt as its text, under
SYSTEM_PROMPT, and returns the text of the client's reply. With image=True the message also carries
a one-pixel PNG, which the hub must reject. echo(text) returns text, so a test can put another app's
output into the session before a completion.
"""

try:
    from mcp.server.mcpserver import Context
    from mcp.server.mcpserver import MCPServer as Server  # mcp 2.x
except ImportError:
    from mcp.server.fastmcp import Context
    from mcp.server.fastmcp import FastMCP as Server  # mcp 1.x
from mcp.types import ImageContent, SamplingMessage, TextContent

SYSTEM_PROMPT = "You write one short haiku for the sampler test app."
# A 1×1 transparent PNG, base64-encoded.
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="

server = Server("sampler")


@server.tool(description="Asks the client's LLM to complete the prompt and returns the completion.")
async def complete(prompt: str, ctx: Context, image: bool = False, max_tokens: int = 64) -> str:
    content = [TextContent(type="text", text=prompt)]
    if image:
        content.append(ImageContent(type="image", data=PIXEL, mime_type="image/png"))
    message = SamplingMessage(role="user", content=content if image else content[0])
    result = await ctx.session.create_message([message], max_tokens=max_tokens, system_prompt=SYSTEM_PROMPT)
    return result.content.text if result.content.type == "text" else f"non-text reply: {result.content.type}"


@server.tool(description="Returns the text it is given.")
def echo(text: str) -> str:
    return text


if __name__ == "__main__":
    server.run()
