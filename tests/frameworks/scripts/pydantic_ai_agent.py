"""A pydantic-ai agent whose tools are planner-mcp's, over stdio, and whose model is the test's scripted one.

Run in the pydantic-ai environment: `python pydantic_ai_agent.py INSTRUCTIONS_JSON`. It reports the version, the
agent's final answer, and each tool result as the agent's history holds it, with its outcome (success, retried).
"""

import asyncio
from typing import Any

from _report import instructions, logged, report, version  # type: ignore[import-not-found]
from fastmcp.client.transports import StdioTransport  # type: ignore[import-not-found]
from pydantic_ai import Agent  # type: ignore[import-not-found]
from pydantic_ai.mcp import MCPToolset  # type: ignore[import-not-found]
from pydantic_ai.models.openai import OpenAIChatModel  # type: ignore[import-not-found]
from pydantic_ai.providers.openai import OpenAIProvider  # type: ignore[import-not-found]


async def main() -> None:
    given = instructions()
    server = given["server"]
    # As the README has it: the default read timeout (5 min) is above our LLM calls' deadline (30 s).
    toolset = MCPToolset(StdioTransport(server["command"], server["args"], env=server["env"]))
    model = OpenAIChatModel(given["model"], provider=OpenAIProvider(base_url=given["base_url"], api_key="test"))
    agent = Agent(model, toolsets=[toolset])
    with logged() as said:
        result = await agent.run(given["prompt"])
    history: list[dict[str, Any]] = [
        {"kind": part.part_kind, "outcome": getattr(part, "outcome", None), "content": part.content}
        for message in result.all_messages()
        for part in message.parts
        if part.part_kind in ("tool-return", "retry-prompt")
    ]
    report(version=version("pydantic-ai-slim"), output=result.output, history=history, logged=said)


asyncio.run(main())
