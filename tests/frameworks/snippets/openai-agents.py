# mypy: ignore-errors
import asyncio
import os

from agents import Agent, Runner, set_default_openai_api
from agents.mcp import MCPServerStdio

set_default_openai_api("chat_completions")  # served by every OpenAI-compatible endpoint (OPENAI_BASE_URL)


async def main() -> None:
    async with MCPServerStdio(
        {
            "command": "planner-mcp",
            "args": ["serve"],
            "env": {"OPENAI_API_KEY": os.environ["OPENAI_API_KEY"], "PLANNER_MCP_MODEL": "gpt-4o-mini"},
        },
        client_session_timeout_seconds=60,  # the default, 5 s, is shorter than an LLM call
        use_structured_content=True,
    ) as planner:
        agent = Agent("planner", model="gpt-4o-mini", mcp_servers=[planner])
        print((await Runner.run(agent, "Which runbooks are there?")).final_output)


asyncio.run(main())
