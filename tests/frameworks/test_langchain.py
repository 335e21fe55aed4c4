"""langchain-mcp-adapters (in its own environment: it pins mcp<2) drives planner-mcp over stdio: it discovers the
six tools, keeps read_docs's structured content as the tool's artifact, returns a tool error to the model as a
ToolMessage with status "error", and every call is in the ledger."""

import json
from pathlib import Path

import pytest

from tests.frameworks.drive import RUNBOOK, drive, tool_results
from tests.peers.openai_server import FakeOpenAI

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def test_a_langchain_tool_loop_calls_the_tools_and_sees_their_results_and_errors(
    llm: FakeOpenAI, ledger_path: Path, tmp_path: Path
) -> None:
    seen = drive("langchain", "langchain_agent.py", llm, ledger_path, tmp_path)

    returned, failed = seen["history"]
    # The model is sent the text content; the structured content stays with LangChain as the artifact.
    assert returned["status"] == "success"
    assert returned["artifact"]["structured_content"]["data"]["name"] == RUNBOOK
    assert json.loads(returned["content"][0]["text"]) == returned["artifact"]["structured_content"]
    assert failed["status"] == "error"
    assert json.loads(failed["content"][0]["text"])["error"]["type"] == "NOT_FOUND"
    found, missing = (json.loads(result) for result in tool_results(llm))
    assert found["data"]["name"] == RUNBOOK and missing["error"]["type"] == "NOT_FOUND"
    assert seen["logged"] == []
