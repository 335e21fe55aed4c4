"""openai-agents (MCPServerStdio) drives planner-mcp: it discovers the six tools, passes read_docs's structured
content to the model, sees a tool error flagged as one, and every call is in the ledger."""

import json
from pathlib import Path

import pytest

from tests.conftest import DEFAULT_TOOLS
from tests.frameworks.drive import RUNBOOK, drive, tool_results
from tests.peers.openai_server import FakeOpenAI

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def test_an_openai_agents_agent_calls_the_tools_and_sees_their_results_and_errors(
    llm: FakeOpenAI, ledger_path: Path, tmp_path: Path
) -> None:
    seen = drive("openai-agents", "openai_agents_agent.py", llm, ledger_path, tmp_path)

    strict = {tool["function"]["name"]: tool["function"]["strict"] for tool in llm.chat_requests[0].json["tools"]}
    # Every input schema converts to OpenAI's strict mode: none falls back (and openai-agents logs nothing for it).
    assert strict == dict.fromkeys(DEFAULT_TOOLS, True)
    returned, failed = seen["history"]
    # use_structured_content: the output is the structured content as JSON; an error keeps its text content.
    assert returned["custom_data"] == {"is_error": False} and json.loads(returned["output"])["data"]["name"] == RUNBOOK
    assert failed["custom_data"] == {"is_error": True}
    assert json.loads(failed["output"]["text"])["error"]["type"] == "NOT_FOUND"
    found, missing = (json.loads(result) for result in tool_results(llm))
    assert found["data"]["name"] == RUNBOOK and missing["error"]["type"] == "NOT_FOUND"
    assert [line for line in seen["logged"] if not line.startswith("INFO ")] == []
