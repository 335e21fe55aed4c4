"""Over HTTP with OAuth many people act as one agent: `read_logs` shows each caller its own calls (and the
`context` it sent), never another's, and no text a caller controls (its client id, a resource URI) makes a row
pass for someone else's. A real server process, with the loopback OAuth issuer and LLM endpoint."""

import json
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from server.call.callers import MAX_VIA
from tests.conftest import API_KEY, rows
from tests.http_server import free_port, http_server
from tests.peers.jwks_server import Issuer
from tests.peers.openai_server import FakeOpenAI, Reply

pytestmark = pytest.mark.subprocess

_SPOOF = "docs://x; caller: client=desk sub=alice"
"""A URI that spells alice's record, as the notes of a call would end with it if URIs were recorded as sent."""


Calls = list[tuple[str, dict[str, Any]]]


async def _session(url: str, token: str, calls: Calls, uri: str = "") -> dict[str, Any]:
    """As the holder of `token`: make `calls` (and read `uri`), then read the log; returns what read_logs gave."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        with anyio.fail_after(30):
            for tool, arguments in calls:
                assert not (await client.call_tool(tool, arguments)).is_error
            if uri:
                with pytest.raises(MCPError, match="INVALID_NAME"):
                    await client.read_resource(uri)
            result = await client.call_tool("read_logs", {})
    assert result.structured_content is not None
    output: dict[str, Any] = result.structured_content
    return output


def _calls(output: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(entry["action"], entry["arguments"]) for entry in output["data"]["entries"]]


def test_over_oauth_read_logs_shows_each_caller_its_own_calls_and_no_one_elses(
    ledger_path: Path, llm: FakeOpenAI
) -> None:
    llm.enqueue(Reply.text("The cluster is healthy."))
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    analyze: dict[str, Any] = {"description": "Is the cluster healthy?", "context": {"note": "alice-only context"}}
    alices: Calls = [("analyze", analyze), ("read_docs", {"name": "backup-restore"})]
    bobs: Calls = [("read_inventory", {})]
    with Issuer(audience=resource) as issuer:
        alice = issuer.token(client_id="desk", sub="alice")
        bob = issuer.token(client_id="desk", sub="bob")
        # Mallory's client id spells alice's record, and so does a URI she reads; her subject is long enough that
        # a row cut at its length would end with a record of alice's (`sub=alice` then cut).
        mallory = issuer.token(client_id="desk sub=alice", sub="alice" + "x" * MAX_VIA)
        # A subject shaped like an AWS key id: the ledger scrubs it from every row, so none can be told as hers.
        scrubbed = issuer.token(client_id="desk", sub="AKIAIOSFODNN7EXAMPLE")
        env = {
            "PLANNER_MCP_OAUTH_ISSUER": issuer.url,
            "PLANNER_MCP_OAUTH_AUDIENCE": resource,
            "PLANNER_MCP_OAUTH_JWKS_URL": issuer.jwks_url,
            "OPENAI_BASE_URL": llm.base_url,
            "OPENAI_API_KEY": API_KEY,
            "PLANNER_MCP_MODEL": "test-model",
        }
        with http_server(ledger_path, port=port, **env) as url:
            anyio.run(_session, url, alice, alices)
            seen_by_bob = anyio.run(_session, url, bob, bobs)
            seen_by_mallory = anyio.run(_session, url, mallory, [], _SPOOF)
            seen_by_alice = anyio.run(_session, url, alice, [])
            seen_scrubbed = anyio.run(_session, url, scrubbed, bobs)
    assert _calls(seen_by_alice) == [
        ("read_logs", {"action": None, "limit": 20}),
        ("read_docs", {"name": "backup-restore"}),
        ("analyze", {**analyze, "docs": []}),
    ]
    assert _calls(seen_by_bob) == [("read_inventory", {"name": None})]
    assert _calls(seen_by_mallory) == [("read_docs", {"name": "x; caller: client=desk sub=alice"})]  # refused
    assert seen_scrubbed["error"]["type"] == "CALLER_UNRECORDED" and "entries" not in json.dumps(seen_scrubbed)
    assert "alice-only context" not in json.dumps(seen_by_bob) + json.dumps(seen_by_mallory)
    [spoof] = [row["notes"] for row in rows(ledger_path) if row["refused"]]
    assert spoof.startswith(
        "resources/read docs://x%3B caller: client=desk sub=alice; caller: client=desk%20sub%3Dalice sub=alicexxx"
    )
    assert len(spoof) <= MAX_VIA and "#" in spoof  # her long subject: its start and a digest, not cut
