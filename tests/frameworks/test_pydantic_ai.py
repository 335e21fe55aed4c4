"""pydantic-ai (MCPToolset over stdio) drives planner-mcp: it discovers the six tools, holds read_docs's result as
the structured AgentOutput, marks a tool error as a call to retry and tells the model so, and every call is in the
ledger."""

import json
from pathlib import Path

import pytest

from tests.frameworks.drive import RUNBOOK, drive, tool_results
from tests.peers.openai_server import FakeOpenAI

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def test_a_pydantic_ai_agent_calls_the_tools_and_sees_their_results_and_errors(
    llm: FakeOpenAI, ledger_path: Path, tmp_path: Path
) -> None:
    seen = drive("pydantic-ai", "pydantic_ai_agent.py", llm, ledger_path, tmp_path)

    returned, failed = seen["history"]
    # The structured content, parsed: the AgentOutput itself, not its text.
    assert returned["outcome"] == "success" and returned["content"]["data"]["name"] == RUNBOOK
    # The default tool_error_behavior ('retry'): the error goes back to the model as a call to make again.
    assert failed["outcome"] == "retried" and json.loads(failed["content"])["error"]["type"] == "NOT_FOUND"
    found, missing = tool_results(llm)
    assert json.loads(found)["data"]["name"] == RUNBOOK
    # The model is told the call failed: the AgentOutput under "error".
    assert json.loads(json.loads(missing)["error"])["error"]["type"] == "NOT_FOUND"
    assert seen["logged"] == []
