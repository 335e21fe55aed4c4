"""A LangChain tool-calling loop whose tools are planner-mcp's (langchain-mcp-adapters, over stdio) and whose
model is the test's scripted one (ChatOpenAI).

Run in the langchain environment (its own: langchain-mcp-adapters pins `mcp<2`): `python langchain_agent.py
INSTRUCTIONS_JSON`. The loop is the one LangGraph's ToolNode runs: invoke the model with the tools bound, invoke
each tool call it makes, send back the ToolMessages, until it answers. It reports the version, the answer, and
each ToolMessage (its status, what the model is sent, and the structured content LangChain keeps beside it).
"""

import asyncio
from typing import Any

from _report import instructions, logged, report, version  # type: ignore[import-not-found]
from langchain_core.messages import BaseMessage, HumanMessage  # type: ignore[import-not-found]
from langchain_mcp_adapters.client import MultiServerMCPClient  # type: ignore[import-not-found]
from langchain_mcp_adapters.tools import load_mcp_tools  # type: ignore[import-not-found]
from langchain_openai import ChatOpenAI  # type: ignore[import-not-found]

_TURNS = 5
"""The loop's bound: the scripted model answers on its third turn."""


async def _run(tools: list[Any], model: Any, prompt: str) -> tuple[str, list[BaseMessage]]:
    by_name = {tool.name: tool for tool in tools}
    messages: list[BaseMessage] = [HumanMessage(prompt)]
    for _ in range(_TURNS):
        answer = await model.bind_tools(tools).ainvoke(messages)
        messages.append(answer)
        if not answer.tool_calls:
            return str(answer.content), messages
        messages += [await by_name[call["name"]].ainvoke(call) for call in answer.tool_calls]
    raise RuntimeError(f"no answer in {_TURNS} turns")


async def main() -> None:
    given = instructions()
    server = {"transport": "stdio", **given["server"]}
    client = MultiServerMCPClient({"planner": server})
    model = ChatOpenAI(model=given["model"], base_url=given["base_url"], api_key="test", max_retries=0)
    with logged() as said:
        # One session for the run: without it, every tool call starts a server of its own.
        async with client.session("planner") as session:
            output, messages = await _run(await load_mcp_tools(session), model, given["prompt"])
    results = [{"status": m.status, "content": m.content, "artifact": m.artifact} for m in messages if m.type == "tool"]
    report(version=version("langchain-mcp-adapters"), output=output, history=results, logged=said)


asyncio.run(main())
