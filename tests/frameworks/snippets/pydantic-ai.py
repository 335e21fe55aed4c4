# mypy: ignore-errors
import asyncio
import os

from fastmcp.client.transports import StdioTransport
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset

planner = MCPToolset(
    StdioTransport(
        "planner-mcp",
        ["serve"],
        env={"OPENAI_API_KEY": os.environ["OPENAI_API_KEY"], "PLANNER_MCP_MODEL": "gpt-4o-mini"},
    )
)
# "openai-chat:" speaks Chat Completions, which every OpenAI-compatible endpoint (OPENAI_BASE_URL) serves.
agent = Agent("openai-chat:gpt-4o-mini", toolsets=[planner])
print(asyncio.run(agent.run("Which runbooks are there?")).output)
