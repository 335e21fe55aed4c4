"""An agents file the server cannot serve as configured stops it at start-up, naming the fix; over stdio, the agent
to run as is PLANNER_MCP_AGENT's. Real server processes."""

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from tests.conftest import rows
from tests.processes import run_server, stdio_params
from tests.server.agents.conftest import agent, agents_file, digest

pytestmark = pytest.mark.subprocess

TOKEN = "a-static-token-0123456789abcdef"
_IDP = "https://idp.example.com"


def _two_agents(path: Path, *more_callers: dict[str, str], issuers: list[dict[str, str]] | None = None) -> Path:
    return agents_file(path, [
        agent("reader", 0, ["read_docs"], {"token_sha256": digest(TOKEN)}, *more_callers),
        agent("auditor", 1, ["read_docs", "read_logs"]),
    ], issuers or [])  # fmt: skip


_UNSERVABLE = [
    ((), {"PLANNER_MCP_HTTP_TOKEN": TOKEN}, "cannot serve HTTP: with an agents file, a static token is one agent's"),
    (({"issuer": _IDP, "subject": "ci-bot"},), {}, f"cannot serve HTTP: the callers of {_IDP} cannot be checked: add"),
    (None, {}, "has a caller, so every request would be refused: add [[agents.callers]]"),
    (({"token_sha256": digest(TOKEN)},), {}, "matches two agents, reader and auditor: give it to one"),
]


@pytest.mark.parametrize(
    ("callers", "env", "says"),
    _UNSERVABLE,
    ids=["a static token besides", "a caller of an unlisted issuer", "no caller at all", "a caller of two agents"],
)
def test_an_agents_file_that_cannot_be_served_over_http_stops_the_server_naming_the_fix(
    tmp_path: Path, ledger_path: Path, callers: tuple[dict[str, str], ...] | None, env: dict[str, str], says: str
) -> None:
    path = tmp_path / "agents.toml"
    if callers is None:
        agents_file(path, [agent("reader", 0, ["read_docs"]), agent("auditor", 1, ["read_logs"])])
    elif callers and "token_sha256" in callers[0]:  # the reader's token given to the auditor too
        agents_file(path, [agent("reader", 0, ["read_docs"], *callers), agent("auditor", 1, ["read_logs"], *callers)])
    else:
        _two_agents(path, *callers)
    command = ("serve", "--transport", "http", "--port", "0")
    proc = run_server(ledger_path, *command, env={"PLANNER_MCP_AGENTS": str(path), **env})
    assert proc.returncode != 0 and proc.stdout == ""
    assert says in proc.stderr, proc.stderr
    assert TOKEN not in proc.stderr and not ledger_path.exists()


@pytest.mark.parametrize(
    ("agent_id", "says"),
    [(None, "has 2 agents (reader, auditor): set PLANNER_MCP_AGENT"), ("ghost", "'ghost' is no agent of")],
    ids=["none named", "one the file does not have"],
)
def test_over_stdio_a_file_of_several_agents_needs_planner_mcp_agent_to_name_one_and_the_message_names_them(
    tmp_path: Path, ledger_path: Path, agent_id: str | None, says: str
) -> None:
    path = _two_agents(tmp_path / "agents.toml")
    env = {"PLANNER_MCP_AGENTS": str(path), **({"PLANNER_MCP_AGENT": agent_id} if agent_id else {})}
    proc = run_server(ledger_path, "serve", env=env, input="")
    assert proc.returncode != 0 and proc.stdout == ""
    assert says in proc.stderr and "reader, auditor" in proc.stderr, proc.stderr
    assert not ledger_path.exists()


async def _as_stdio_host(ledger_path: Path, env: dict[str, str]) -> tuple[list[str], dict[str, Any]]:
    params = stdio_params({"PLANNER_MCP_LEDGER": str(ledger_path), **env}, "serve")
    with anyio.fail_after(60):
        async with Client(params, mode="legacy") as client:
            tools = [tool.name for tool in (await client.list_tools()).tools]
            result = await client.call_tool("read_logs", {})
    assert result.structured_content is not None
    return tools, result.structured_content


def test_over_stdio_planner_mcp_agent_runs_as_that_agent_of_the_file(tmp_path: Path, ledger_path: Path) -> None:
    path = _two_agents(tmp_path / "agents.toml")
    env = {"PLANNER_MCP_AGENTS": str(path), "PLANNER_MCP_AGENT": "auditor"}
    tools, output = anyio.run(_as_stdio_host, ledger_path, env)
    assert tools == ["read_docs", "list_docs", "read_logs"]
    assert (output["decision"], output["agent_id"], output["data"]["agent_id"]) == ("EXECUTE", "auditor", "auditor")
    [row] = rows(ledger_path)
    assert (row["agent_id"], row["tier"], row["action"], row["refused"]) == ("auditor", 1, "read_logs", 0)
