"""Over HTTP with an agents file, resources and the prompt pass the gate of the caller's agent, as tools do: each
caller gets the prompt only when its agent plans, and every read and prompt is recorded as its agent's and its
caller's. A real server process, with static tokens."""

from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.conftest import rows
from tests.http_server import free_port, serving
from tests.peers.jwks_server import Issuer
from tests.server.agents.fleet import Caller, callers, fleet_file

pytestmark = pytest.mark.subprocess


async def _prompt_and_reads(url: str, caller: Caller) -> str:
    """Ask for the plan prompt and read two resources as `caller`; what the prompt request gave."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {caller.token}"}) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        with anyio.fail_after(30):
            await client.read_resource("docs://backup-restore")
            await client.read_resource("inventory://edge-sites")
            try:
                prompt = await client.get_prompt("plan_request", {"description": "Add a VM"})
            except MCPError as exc:
                return str(exc)
    return f"{len(prompt.messages)} message"


def test_each_callers_resource_reads_and_prompt_pass_its_own_agents_gate_and_are_recorded_as_its_own(
    tmp_path: Path, ledger_path: Path
) -> None:
    port = free_port()
    with Issuer(audience=f"http://127.0.0.1:{port}/mcp") as issuer:
        static = [caller for caller in callers(issuer) if caller.name.endswith("-static")]
        path = fleet_file(tmp_path / "agents.toml", issuer)
        with serving(ledger_path, port=port, env={"PLANNER_MCP_AGENTS": str(path)}) as served:
            prompts = {caller.agent: anyio.run(_prompt_and_reads, served.url, caller) for caller in static}
    refused = "FORBIDDEN_ACTION: 'plan_request' is not a prompt of this server."
    assert prompts == {"observer": refused, "analyst": refused, "planner": "1 message"}
    records = {caller.agent: caller.record for caller in static}
    recorded = [(r["agent_id"], r["tier"], r["action"], r["refused"], r["notes"]) for r in rows(ledger_path)]
    assert recorded == [
        row
        for agent_id, tier in (("observer", 0), ("analyst", 1), ("planner", 2))
        for row in (
            (agent_id, tier, "read_docs", 0, f"resources/read docs://backup-restore; {records[agent_id]}"),
            (agent_id, tier, "read_inventory", 0, f"resources/read inventory://edge-sites; {records[agent_id]}"),
            (
                agent_id,
                tier,
                "plan_request",
                int(agent_id != "planner"),
                f"prompts/get plan_request; {records[agent_id]}",
            ),
        )
    ]
