"""Over HTTP with an agents file, each caller acts as its own agent: its tools, its calls, its rows. A caller of no
agent is refused (403) and recorded. Real server processes, the loopback OAuth issuer."""

import json
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import rows
from tests.http_server import JSON_LOGS, free_port, initialize, refusals, serving
from tests.peers.jwks_server import Issuer
from tests.processes import run_cli
from tests.server.agents.conftest import agent, agents_file, digest

pytestmark = pytest.mark.subprocess

READER = "reader-token-0123456789abcdef"
AUDITOR = "auditor-token-0123456789abcdef"


async def _tools_and_read(url: str, token: str) -> tuple[list[str], dict[str, Any]]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        with anyio.fail_after(30):
            tools = [tool.name for tool in (await client.list_tools()).tools]
            result = await client.call_tool("read_inventory", {})
    assert result.structured_content is not None
    return tools, result.structured_content


def test_each_static_token_acts_as_its_own_agent_and_its_rows_name_the_agent_tier_and_caller(
    tmp_path: Path, ledger_path: Path
) -> None:
    path = agents_file(tmp_path / "agents.toml", [
        agent("ci-reader", 0, ["read_docs", "read_inventory"], {"token_sha256": digest(READER), "name": "ci"}),
        agent("auditor", 1, ["read_logs"], {"token_sha256": digest(AUDITOR)}),
    ])  # fmt: skip
    with serving(ledger_path, env={"PLANNER_MCP_AGENTS": str(path)}) as served:
        reader_tools, read = anyio.run(_tools_and_read, served.url, READER)
        auditor_tools, refused = anyio.run(_tools_and_read, served.url, AUDITOR)
        stranger = initialize(served.url, authorization="Bearer not-a-caller-token-at-all")
    assert reader_tools == ["read_docs", "list_docs", "read_inventory"]
    assert auditor_tools == ["read_logs"]
    assert read["decision"] == "EXECUTE" and refused["error"]["type"] == "FORBIDDEN_ACTION"
    assert stranger.status_code == 401
    recorded = {(r["agent_id"], r["tier"], r["action"], r["refused"], r["notes"]) for r in rows(ledger_path)}
    assert recorded == {
        ("ci-reader", 0, "read_inventory", 0, f"caller: static=sha256:{digest(READER)[:16]}"),
        ("auditor", 1, "read_inventory", 1, f"caller: static=sha256:{digest(AUDITOR)[:16]}"),
    }
    assert READER not in served.stderr and AUDITOR not in served.stderr


def test_a_jwt_caller_acts_as_the_agent_of_its_group_and_one_of_no_agent_is_refused_and_recorded(
    tmp_path: Path, ledger_path: Path
) -> None:
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    with Issuer(audience=resource) as issuer:
        path = agents_file(
            tmp_path / "agents.toml",
            [agent("sre", 1, ["read_docs", "read_inventory"], {"issuer": issuer.url, "group": "sre"})],
            [{"issuer": issuer.url, "jwks_url": issuer.jwks_url}],
        )
        member = issuer.token(sub="alice", client_id="desk", groups=["dev", "sre"])
        outsider = issuer.token(sub="mallory", client_id="desk", groups=["dev"])
        with serving(ledger_path, port=port, env={"PLANNER_MCP_AGENTS": str(path)}, options=JSON_LOGS) as served:
            tools, read = anyio.run(_tools_and_read, served.url, member)
            refused = initialize(served.url, authorization=f"Bearer {outsider}")
    assert tools == ["read_docs", "list_docs", "read_inventory"] and read["decision"] == "EXECUTE"
    assert refused.status_code == 403 and "no agent" in refused.json()["error_description"]
    [row] = rows(ledger_path)
    assert row["agent_id"] == "sre" and row["notes"] == (
        f"claims: groups=dev,sre; caller: client=desk sub=alice iss={issuer.url}"
    )
    [event] = [e for e in rows(ledger_path, "ledger_events") if e["kind"] == "caller-refused"]
    assert "sub=mallory" in event["detail"] and "matches no agent" in event["detail"]
    logged, _ = refusals(served.stderr)
    assert [(line["status"], line["reason"]) for line in logged] == [(403, "no_agent")]
    assert member not in json.dumps(rows(ledger_path)) + served.stderr


def test_replay_judges_again_what_callers_did_over_http_and_names_each_change(
    tmp_path: Path, ledger_path: Path
) -> None:
    """The notes a real server wrote are what replay reads back: a stricter file refuses what the reader did, a
    looser one allows what the auditor was refused, and nothing else changes."""
    reader = agent("ci-reader", 0, ["read_docs", "read_inventory"], {"token_sha256": digest(READER)})
    auditor = agent("auditor", 1, ["read_logs"], {"token_sha256": digest(AUDITOR)})
    path = agents_file(tmp_path / "agents.toml", [reader, auditor])
    with serving(ledger_path, env={"PLANNER_MCP_AGENTS": str(path)}) as served:
        _, read = anyio.run(_tools_and_read, served.url, READER)
        _, refused = anyio.run(_tools_and_read, served.url, AUDITOR)
    stricter = agents_file(tmp_path / "stricter.toml", [{**reader, "allowed_side_effects": ["read_docs"]}, auditor])
    looser = agents_file(tmp_path / "looser.toml", [reader, {**auditor, "allowed_side_effects": ["read_inventory"]}])

    def replay(candidate: Path) -> tuple[int, list[tuple[str, str, str, str]]]:
        done = run_cli(ledger_path, "ledger", "replay", "--agents", str(candidate), "--json",
                       PLANNER_MCP_AGENTS=str(path))  # fmt: skip
        changes = json.loads(done.stdout)["changes"]
        return done.returncode, [(c["request_id"], c["caller"], c["before"], c["after"]) for c in changes]

    assert replay(stricter) == (1, [(read["request_id"], f"static=sha256:{digest(READER)[:16]}", "allowed", "refused")])
    assert replay(looser) == (
        1,
        [(refused["request_id"], f"static=sha256:{digest(AUDITOR)[:16]}", "refused", "allowed")],
    )
    assert replay(path) == (0, [])
