"""A ledger written the way servers write one, for the report's tests: calls through the gate of an in-memory
server (reads, a missing document, refused tools, one named with markup, LLM plans escalated and not, with their
tokens), then, over HTTP, a second agent's call and a caller the agents file gives to no agent."""

import json
from pathlib import Path
from typing import Any

import anyio

from server import Settings
from tests.conftest import PLAN, call, connect
from tests.http_server import free_port, initialize, serving, use
from tests.peers.jwks_server import Issuer
from tests.peers.openai_replies import Reply
from tests.peers.openai_server import FakeOpenAI
from tests.server.agents.conftest import agent, agents_file, digest

__all__ = ["DISGUISED_TOOL", "MARKUP_TOOLS", "over_http", "through_the_gate"]

MARKUP_TOOLS = ('<script>document.title="planted"</script>', '<img src="x" onerror="alert(1)">')
"""Tool names a caller may send: the gate refuses them and the ledger records them (scrubbed, not escaped)."""

DISGUISED_TOOL = "ssh\u202etxt.exe"
"""A name whose right-to-left override would show it as another: the page shows the override as an escape."""

_ALPHA = "alpha-static-token-0123456789abcdef"


def _plan(**changes: Any) -> str:
    return json.dumps({**PLAN, **changes})


def through_the_gate(settings: Settings, llm: FakeOpenAI) -> None:
    """Calls of the default agent through a server of its own, in memory, on `settings`' ledger."""
    llm.enqueue(
        Reply.text(_plan(confidence=0.55), usage={"prompt_tokens": 300, "completion_tokens": 40, "total_tokens": 340}),
        Reply.text(_plan(), usage={"prompt_tokens": 200, "completion_tokens": 25, "total_tokens": 225}),
    )
    calls: list[tuple[str, dict[str, Any]]] = [
        ("read_docs", {"name": "backup-restore"}),
        ("list_docs", {}),
        ("read_docs", {"name": "no-such-runbook"}),
        ("ssh", {"host": "pve01"}),
        *((name, {}) for name in (*MARKUP_TOOLS, DISGUISED_TOOL)),
        ("generate_plan", {"description": "Add a VM"}),
        ("generate_plan", {"description": "Add another VM"}),
        ("read_inventory", {}),
    ]

    async def run() -> None:
        async with connect(settings) as client:
            for tool, arguments in calls:
                await call(client, tool, arguments)

    anyio.run(run)


def over_http(ledger_path: Path, folder: Path) -> None:
    """A real `serve --transport http` with an agents file: agent alpha reads a document; a caller of no agent is
    refused (403), which the ledger records as a `caller-refused` event."""
    port = free_port()
    with Issuer(audience=f"http://127.0.0.1:{port}/mcp") as issuer:
        path = agents_file(folder / "agents.toml", [
            agent("alpha", 0, ["read_docs"], {"issuer": issuer.url, "group": "ops"}, {"token_sha256": digest(_ALPHA)}),
        ], [{"issuer": issuer.url, "jwks_url": issuer.jwks_url}])  # fmt: skip
        nobody = issuer.token(client_id="desk", sub="nobody", groups=["dev"])
        with serving(ledger_path, port=port, env={"PLANNER_MCP_AGENTS": str(path)}) as served:
            anyio.run(use, served.url, _ALPHA)
            assert initialize(served.url, authorization=f"Bearer {nobody}").status_code == 403
