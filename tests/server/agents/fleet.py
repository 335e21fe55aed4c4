"""Three agents of one agents file, at tiers 0, 1 and 2, and their callers: what each caller should be shown, and a
session that asks for all of it and makes the calls its agent may and may not make.

A session returns what it saw; the tests compare that with what its agent should be shown, and the ledger's rows
with the calls each caller made, and count what differs (a leak).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.peers.jwks_server import Issuer
from tests.peers.plans import A_PLAN
from tests.server.agents.conftest import agent, agents_file, digest

__all__ = ["AGENTS", "BUDGET", "LLM_REPLY", "Caller", "Expected", "Seen", "callers", "fleet_file", "session"]

LLM_REPLY = json.dumps(A_PLAN)
"""What the LLM answers every call with: a plan, which analyze takes too (18 tokens each, by the peer's usage)."""

_STATIC = {name: f"{name}-static-token-0123456789abcdef" for name in ("observer", "analyst", "planner")}
BUDGET = 40
"""The planner's daily tokens: a third call of 18 starts under it, a fourth cannot, so its callers run it out."""


@dataclass(frozen=True)
class Expected:
    """What an agent's callers are shown, and the calls a session of theirs makes."""

    tier: int
    tools: list[str]
    resources: list[str]
    templates: list[str]
    prompts: list[str]
    models: list[str] | None
    budget: int | None
    llm_calls: tuple[str, ...]
    """The LLM tools a session calls."""
    refused: str
    """A tool outside the agent's list, which a session calls and is refused."""


AGENTS = {
    "observer": Expected(
        0, ["read_docs", "list_docs", "read_inventory"], ["policy://effective", "inventory://proxmox"],
        ["docs://{name}", "inventory://{name}"], [], None, None, (), "analyze",
    ),
    "analyst": Expected(
        1, ["read_docs", "list_docs", "read_inventory", "analyze", "read_logs"],
        ["policy://effective", "inventory://proxmox"], ["docs://{name}", "inventory://{name}"], [], ["test-model"],
        None, ("analyze",), "generate_plan",
    ),
    "planner": Expected(
        2, ["read_docs", "list_docs", "read_inventory", "generate_plan", "analyze", "read_logs"],
        ["policy://effective", "inventory://proxmox"], ["docs://{name}", "inventory://{name}"], ["plan_request"],
        ["large-model", "test-model"], BUDGET, ("generate_plan", "analyze"), "ssh",
    ),
}  # fmt: skip
"""By agent id: the tier-0 observer reads; the tier-1 analyst also analyzes (one model) and reads its log; the
tier-2 planner also plans (another model list) on a small budget."""


@dataclass(frozen=True)
class Caller:
    """One caller: the agent it acts as, its bearer token, and the record its ledger rows close with."""

    name: str
    agent: str
    token: str
    record: str


def fleet_file(path: Path, issuer: Issuer) -> Path:
    """The agents file: each agent has a static token, and JWT callers matched by subject, client id or group."""
    readers = ["read_docs", "read_inventory"]
    return agents_file(
        path,
        [
            agent(
                "observer", 0, readers, {"token_sha256": digest(_STATIC["observer"])},
                {"issuer": issuer.url, "subject": "ci-bot", "name": "ci"},
            ),
            agent(
                "analyst", 1, [*readers, "read_logs", "llm_inference"],
                {"issuer": issuer.url, "client_id": "analyst-desk"}, {"token_sha256": digest(_STATIC["analyst"])},
                models_by_tier={"1": ["test-model"]},
            ),
            agent(
                "planner", 2, [*readers, "read_logs", "llm_inference", "generate_plan"],
                {"issuer": issuer.url, "group": "planners"}, {"token_sha256": digest(_STATIC["planner"])},
                models_by_tier={"2": ["test-model", "large-model"]}, daily_token_budget=BUDGET,
            ),
        ],
        [{"issuer": issuer.url, "jwks_url": issuer.jwks_url}],
    )  # fmt: skip


def callers(issuer: Issuer) -> list[Caller]:
    """Seven callers of the three agents: a static token each, and JWTs of the issuer."""

    def jwt(name: str, agent_id: str, client_id: str, sub: str, groups: Sequence[str] = ()) -> Caller:
        token = issuer.token(client_id=client_id, sub=sub, groups=list(groups) or None)
        return Caller(name, agent_id, token, f"caller: client={client_id} sub={sub} iss={issuer.url}")

    static = [
        Caller(f"{agent_id}-static", agent_id, token, f"caller: static=sha256:{digest(token)[:16]}")
        for agent_id, token in _STATIC.items()
    ]
    return [
        *static,
        jwt("ci-bot", "observer", "ci", "ci-bot"),  # by subject
        jwt("ann", "analyst", "analyst-desk", "ann", ["dev"]),  # by client id; its group is no agent's
        jwt("pat", "planner", "desk", "pat", ["planners"]),  # by group
        jwt("pia", "planner", "desk", "pia", ["dev", "planners"]),
    ]


@dataclass
class Seen:
    """What one session was shown and given."""

    caller: Caller
    tools: list[str] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    policy: dict[str, Any] = field(default_factory=dict)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    """Every call's AgentOutput, in order (the policy read's too, as far as its request id)."""
    logged: list[str] = field(default_factory=list)
    """The request ids read_logs showed, when the agent has it."""

    @property
    def request_ids(self) -> list[str]:
        return [output["request_id"] for output in self.outputs]


async def session(url: str, caller: Caller, *, log_limit: int = 100, timeout_s: float = 120) -> Seen:
    """One session of `caller`: its lists and policy, two reads, a refused tool, its agent's LLM calls, then its log."""
    seen = Seen(caller)
    expected = AGENTS[caller.agent]
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {caller.token}"}, timeout=timeout_s) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        with anyio.fail_after(timeout_s):
            seen.tools = [tool.name for tool in (await client.list_tools()).tools]
            seen.resources = [str(r.uri) for r in (await client.list_resources()).resources]
            seen.templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
            seen.prompts = [prompt.name for prompt in (await client.list_prompts()).prompts]
            [policy] = (await client.read_resource("policy://effective")).contents
            assert policy.meta is not None and hasattr(policy, "text")
            seen.policy = json.loads(policy.text)
            seen.outputs.append(
                {"request_id": policy.meta["planner-mcp/request_id"], "agent_id": seen.policy["agent_id"]}
            )
            calls = [("read_docs", {"name": "backup-restore"}), ("read_inventory", {}), (expected.refused, {})]
            calls += [(tool, {"description": f"Add a VM for {caller.name}"}) for tool in expected.llm_calls]
            for tool, arguments in calls:
                seen.outputs.append(await _call(client, tool, arguments))
            if "read_logs" in expected.tools:
                output = await _call(client, "read_logs", {"limit": log_limit})
                seen.outputs.append(output)
                seen.logged = [entry["request_id"] for entry in (output["data"] or {}).get("entries", [])]
    return seen


async def _call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert result.structured_content is not None
    output: dict[str, Any] = result.structured_content
    return output
