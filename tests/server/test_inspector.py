"""The reference client we did not write: the MCP Inspector CLI drives `planner-mcp serve` over stdio.

`.ci/run` installs the pinned Inspector and points PLANNER_MCP_INSPECTOR at it; without it these tests
skip and say how to get it.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY, DEFAULT_TOOLS, PLAN, rows
from tests.http_server import http_server
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.processes import server_command

INSPECTOR = os.environ.get("PLANNER_MCP_INSPECTOR") or shutil.which("mcp-inspector")

pytestmark = [
    pytest.mark.subprocess,
    pytest.mark.skipif(
        INSPECTOR is None,
        reason="MCP Inspector not found: `npm install @modelcontextprotocol/inspector@2.12.0` and set "
        "PLANNER_MCP_INSPECTOR to its node_modules/.bin/mcp-inspector (.ci/run does this)",
    ),
]


def _inspect(ledger_path: Path, llm: FakeOpenAI, *args: str) -> dict[str, Any]:
    assert INSPECTOR is not None
    env = {
        "PLANNER_MCP_LEDGER": str(ledger_path),
        "OPENAI_BASE_URL": llm.base_url,
        "OPENAI_API_KEY": API_KEY,
        "PLANNER_MCP_MODEL": "test-model",
    }
    server = server_command("serve")
    env_flags = [flag for key, value in env.items() for flag in ("-e", f"{key}={value}")]
    proc = subprocess.run([INSPECTOR, "--cli", *server, *env_flags, *args], capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_the_inspector_lists_the_tools_with_all_their_hints(ledger_path: Path, llm: FakeOpenAI) -> None:
    tools = _inspect(ledger_path, llm, "--method", "tools/list")["tools"]
    assert [t["name"] for t in tools] == DEFAULT_TOOLS
    for tool in tools:
        assert set(tool["annotations"]) >= {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}
        assert tool["title"] and tool["outputSchema"]


def test_the_inspector_calls_every_tool_and_each_call_is_in_the_ledger(ledger_path: Path, llm: FakeOpenAI) -> None:
    llm.enqueue(Reply.text(json.dumps(PLAN)), Reply.text(json.dumps({"analysis": "Fine.", "confidence": 0.8})))
    calls = [
        ("read_docs", ["--tool-arg", "name=incident-response"]),
        ("list_docs", []),
        ("read_inventory", ["--tool-arg", "name=edge-sites"]),
        ("generate_plan", ["--tool-arg", "description=Add a VM to the prod pool"]),
        ("analyze", ["--tool-arg", "description=Is pve02 overloaded?"]),
    ]
    decisions = []
    for tool, args in calls:
        result = _inspect(ledger_path, llm, "--method", "tools/call", "--tool-name", tool, *args)
        assert result.get("isError") is not True, result
        decisions.append(result["structuredContent"]["decision"])
    assert decisions == ["EXECUTE"] * 5
    assert [r["action"] for r in rows(ledger_path)] == [tool for tool, _ in calls]
    assert len(llm.chat_requests) == 2


def test_the_inspector_lists_and_calls_the_tools_over_http_with_a_token(ledger_path: Path) -> None:
    assert INSPECTOR is not None
    token = "inspector-http-token-0123456789"
    with http_server(ledger_path, PLANNER_MCP_HTTP_TOKEN=token) as url:
        base = [INSPECTOR, "--cli", url, "--transport", "http", "--header", f"Authorization: Bearer {token}"]
        listed = subprocess.run([*base, "--method", "tools/list"], capture_output=True, text=True, timeout=90)
        called = subprocess.run(
            [*base, "--method", "tools/call", "--tool-name", "read_docs", "--tool-arg", "name=backup-restore"],
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        refused = subprocess.run([INSPECTOR, "--cli", url, "--transport", "http", "--method", "tools/list"],
                                 capture_output=True, text=True, timeout=90)  # fmt: skip
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert [t["name"] for t in json.loads(listed.stdout)["tools"]] == DEFAULT_TOOLS
    assert called.returncode == 0, called.stdout + called.stderr
    output = json.loads(called.stdout)["structuredContent"]
    assert output["decision"] == "EXECUTE" and output["data"]["name"] == "backup-restore"
    assert refused.returncode != 0 and "auth_required" in refused.stdout + refused.stderr  # it saw the 401
    assert [r["request_id"] for r in rows(ledger_path)] == [output["request_id"]]
