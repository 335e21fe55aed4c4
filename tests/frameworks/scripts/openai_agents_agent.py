"""An openai-agents agent whose tools are planner-mcp's, over stdio, and whose model is the test's scripted one.

Run in the openai-agents environment: `python openai_agents_agent.py INSTRUCTIONS_JSON`. It reports the version,
the agent's final answer, each tool output as the run's items hold it with the result's `isError` flag, and what
the SDK logged (its fallbacks from strict schemas among them).
"""

import asyncio
from typing import Any

from _report import instructions, logged, report, version  # type: ignore[import-not-found]
from agents import Agent, OpenAIChatCompletionsModel, Runner, set_tracing_disabled  # type: ignore[import-not-found]
from agents.mcp import MCPServerStdio  # type: ignore[import-not-found]
from openai import AsyncOpenAI


def _error_flag(context: Any) -> dict[str, Any]:
    return {"is_error": context.is_error}


async def main() -> None:
    given = instructions()
    set_tracing_disabled(True)  # traces would be sent to OpenAI
    model = OpenAIChatCompletionsModel(given["model"], AsyncOpenAI(base_url=given["base_url"], api_key="test"))
    server = MCPServerStdio(
        {"command": given["server"]["command"], "args": given["server"]["args"], "env": given["server"]["env"]},
        # As the README has it: the default, 5 s, is below our LLM calls' deadline (30 s).
        client_session_timeout_seconds=60,
        use_structured_content=True,
        custom_data_extractor=_error_flag,
    )
    with logged("openai.agents") as said:
        async with server:
            agent = Agent("planner", model=model, mcp_servers=[server], mcp_config={"convert_schemas_to_strict": True})
            result = await Runner.run(agent, given["prompt"])
    outputs = [
        {"output": item.output, "custom_data": item.custom_data}
        for item in result.new_items
        if item.type == "tool_call_output_item"
    ]
    report(version=version("openai-agents"), output=result.final_output, history=outputs, logged=said)


asyncio.run(main())
