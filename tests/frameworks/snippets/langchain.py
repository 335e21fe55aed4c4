# mypy: ignore-errors
import asyncio
import os

from langchain_core.messages import HumanMessage
from langchain_mcp_adapters.client import MultiServerMCPClient
from langchain_mcp_adapters.tools import load_mcp_tools
from langchain_openai import ChatOpenAI

client = MultiServerMCPClient(
    {
        "planner": {
            "transport": "stdio",
            "command": "planner-mcp",
            "args": ["serve"],
            "env": {"OPENAI_API_KEY": os.environ["OPENAI_API_KEY"], "PLANNER_MCP_MODEL": "gpt-4o-mini"},
        }
    }
)


async def main() -> None:
    async with client.session("planner") as session:  # one server for the whole conversation
        tools = {tool.name: tool for tool in await load_mcp_tools(session)}
        model = ChatOpenAI(model="gpt-4o-mini").bind_tools(list(tools.values()))
        messages = [HumanMessage("Which runbooks are there?")]
        while (answer := await model.ainvoke(messages)).tool_calls:
            messages += [answer, *[await tools[call["name"]].ainvoke(call) for call in answer.tool_calls]]
        print(answer.content)


asyncio.run(main())
