"""The server as hosts run it: a real process on stdio, driven by the official client."""

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, Request

from server import Settings, build_server
from tests.conftest import API_KEY, DEFAULT_TOOLS, PLAN, rows
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.processes import server_process, stdio_params

pytestmark = [pytest.mark.anyio, pytest.mark.subprocess]


def _params(ledger_path: Path, **env: str) -> StdioServerParameters:
    return stdio_params({"PLANNER_MCP_LEDGER": str(ledger_path), **env}, "serve")


async def test_a_host_lists_and_calls_the_tools_over_stdio(ledger_path: Path, llm: FakeOpenAI) -> None:
    llm.enqueue(Reply.text(json.dumps(PLAN)))
    env = {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": API_KEY, "PLANNER_MCP_MODEL": "test-model"}
    with anyio.fail_after(60):
        async with Client(_params(ledger_path, **env), mode="legacy") as client:
            tools = (await client.list_tools()).tools
            docs = await client.call_tool("read_docs", {"name": "vm-provisioning"})
            plan = await client.call_tool("generate_plan", {"description": "Add a VM to the prod pool"})
            refused = await client.call_tool("execute_shell", {"command": "rm -rf /"})
    assert [t.name for t in tools] == DEFAULT_TOOLS
    assert not docs.is_error and docs.structured_content is not None
    assert docs.structured_content["data"]["name"] == "vm-provisioning"
    assert not plan.is_error and plan.structured_content is not None
    assert plan.structured_content["decision"] == "EXECUTE"
    assert refused.is_error and refused.structured_content is not None
    assert refused.structured_content["error"]["type"] == "FORBIDDEN_ACTION"
    assert [r["action"] for r in rows(ledger_path)] == ["read_docs", "generate_plan", "execute_shell"]
    assert len(llm.chat_requests) == 1


_HANDSHAKE: list[dict[str, Any]] = [
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "raw-test", "version": "1"},
        },
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
]
"""What a host sends first, as raw JSON-RPC lines: initialize (id 1) and its notification."""


def test_stdout_carries_only_protocol_messages(ledger_path: Path) -> None:
    messages: list[dict[str, Any]] = [
        *_HANDSHAKE,
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "ssh", "arguments": {}}},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "list_docs", "arguments": {}}},
    ]
    with server_process(ledger_path, "--log-level", "DEBUG", "serve", encoding="utf-8") as proc:
        lines, stderr = _converse(proc, messages, answers=4)
    replies = [json.loads(line) for line in lines]
    assert all(r.get("jsonrpc") == "2.0" for r in replies)
    by_id = {r["id"]: r for r in replies if "id" in r}
    assert set(by_id) == {1, 2, 3, 4}
    assert by_id[3]["result"]["isError"] is True
    assert by_id[4]["result"]["isError"] is False
    assert "DEBUG" in stderr  # logs were written, to stderr
    assert "planner-mcp: serving" not in stderr  # the hint is for terminals only


_FORGED = "2026-01-01 00:00:00,000 ERROR server.gate: forged"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_name_a_caller_sends_cannot_forge_a_log_line(ledger_path: Path, log_format: str) -> None:
    names = [f"nope\n{_FORGED}", f"nope\r{_FORGED}", f"nope\u2028{_FORGED}", f"nope\x85{_FORGED}"]
    messages: list[dict[str, Any]] = [
        *_HANDSHAKE,
        *({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": n}} for i, n in enumerate(names, 2)),
    ]
    with server_process(
        ledger_path, "--log-level", "INFO", "--log-format", log_format, "serve", encoding="utf-8"
    ) as proc:
        _, stderr = _converse(proc, messages, answers=len(names) + 1)
    # Split as the most eager reader would: at every line break Unicode knows, not only at "\n".
    lines = stderr.splitlines()
    assert lines and not [line for line in lines if line.startswith(_FORGED[:10])], stderr
    if log_format == "json":
        entries = [json.loads(line) for line in lines]  # each a whole object: no value broke its line
        assert sorted(e["action"] for e in entries if "action" in e) == sorted(names)  # and each value intact
    else:
        for escaped in ("\\n", "\\r", "\\u2028", "\\x85"):
            assert f"nope{escaped}{_FORGED}" in stderr


def _converse(proc: "subprocess.Popen[str]", messages: list[dict[str, Any]], answers: int) -> tuple[list[str], str]:
    """Send the messages, read stdout until `answers` replies came, then close stdin."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
    proc.stdin.flush()
    lines: list[str] = []
    # Keep stdin open until every request is answered: EOF means the host has gone.
    while len([line for line in lines if '"id"' in line]) < answers:
        line = proc.stdout.readline()
        assert line, "the server closed stdout before answering"
        lines.append(line)
    proc.stdin.close()
    lines += proc.stdout.readlines()
    stderr = proc.stderr.read()
    assert proc.wait() == 0
    return lines, stderr


class _UncheckedCall(Request[dict[str, Any], Literal["tools/call"]]):
    """A tools/call whose params go on the wire as given."""


async def test_a_host_over_stdio_sees_each_methods_own_error_codes_and_every_refusal_is_recorded(
    ledger_path: Path, mode: str
) -> None:
    with anyio.fail_after(60):
        async with Client(_params(ledger_path), mode=mode) as client:
            codes = []
            for ask in (
                lambda: client.read_resource("docs://no-such-runbook"),
                lambda: client.read_resource("file:///etc/passwd"),
                lambda: client.read_resource("docs://../secrets"),
                lambda: client.get_prompt("generate_plan", {"description": "Add a VM"}),
                lambda: client.session.send_request(
                    _UncheckedCall(method="tools/call", params={"name": "ssh", "arguments": "x"}), CallToolResult
                ),
            ):
                with pytest.raises(MCPError) as refused:
                    await ask()
                codes.append(refused.value.error.code)
    not_found = -32002 if mode == "legacy" else -32602  # SEP-2164 retired -32002 in 2026-07-28
    assert codes == [not_found, not_found, -32602, -32602, -32602]
    recorded = [(r["action"], r["error_type"], r["refused"]) for r in rows(ledger_path)]
    assert recorded == [
        ("read_docs", "NOT_FOUND", 0),
        ("file:///etc/passwd", "FORBIDDEN_ACTION", 1),
        ("read_docs", "INVALID_NAME", 1),
        ("generate_plan", "FORBIDDEN_ACTION", 1),
        ("ssh", "INVALID_INPUT", 1),
    ]


async def test_the_sdks_own_stdio_loop_is_refused_since_it_has_none_of_the_servers_guards(
    make_settings: Callable[..., Settings],
) -> None:
    server = build_server(make_settings())
    with anyio.fail_after(10), pytest.raises(RuntimeError, match="serve_stdio"):
        await server.run_stdio_async()
