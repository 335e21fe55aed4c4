"""`planner-mcp doctor`: one line per check of the configuration, the store, the LLM settings and the ledger.

Every failure comes with the fix. Nothing here prints a secret or writes anything.
"""

import os
from collections.abc import Iterator

from contracts import AgentMetadata
from server.call.failures import ToolFailure
from server.config.file import layered
from server.config.settings import Settings
from server.config.urls import shown
from server.doctor.agents import agents_checks
from server.doctor.check import Check
from server.doctor.ledger import ledger_checks
from server.doctor.llm import llm_checks
from server.doctor.telemetry import telemetry_checks
from server.doctor.vault import vault_checks
from server.governance.policy import PolicyError, load_policy
from server.stores import FileStore
from server.tools import registered_tools

__all__ = ["Check", "run_checks"]


def run_checks(settings: Settings) -> Iterator[Check]:
    yield from _configuration(settings)
    if settings.agents_path is not None:
        yield from agents_checks(settings)
        agent = None  # the server has one model for every agent: the agents check says which agent may not use it
    else:
        check, agent = _policy(settings)
        yield check
    if settings.vault is None:
        yield from _file_store(settings)
    else:
        yield from vault_checks(
            settings.vault,
            default_inventory=settings.default_inventory,
            llm_key_from_vault=settings.llm.key_from_vault,
        )
    yield from llm_checks(settings.llm, agent)
    yield from ledger_checks(settings)
    yield from telemetry_checks(settings)


def _policy(settings: Settings) -> tuple[Check, AgentMetadata | None]:
    try:
        agent = load_policy(settings.policy_path)
    except PolicyError as exc:
        return Check("policy", "fail", str(exc), "Fix the policy file named by PLANNER_MCP_POLICY, or unset it."), None
    tools = ", ".join(registered_tools(agent)) or "none"
    return Check("policy", "ok", f"agent {agent.agent_id}, tier {agent.tier}; tools: {tools}"), agent


def _file_store(settings: Settings) -> Iterator[Check]:
    """The store's own listing, so the doctor passes only what the store serves (no folder that is a link)."""
    root, store = settings.data_dir, FileStore(settings.data_dir)
    try:
        store.list_docs_now()
        inventories = store.list_inventories_now()
    except ToolFailure as exc:
        yield Check("store", "fail", exc.message, exc.recommended_action)
        return
    yield Check("store", "ok", f"file store {root} (VAULT_ADDR is not set)")
    if settings.default_inventory not in inventories:
        yield Check(
            "store.inventory",
            "warn",
            f"no default inventory {settings.default_inventory!r} in {root / 'inventory'}",
            "Set PLANNER_MCP_INVENTORY to an inventory that exists.",
        )


def _configuration(settings: Settings) -> Iterator[Check]:
    env = layered(os.environ)  # already read once by Settings.from_env: here only to say where values came from
    from_file = sorted(name for name, source in env.sources.items() if source == "file")
    where = f"{env.file} ({len(from_file)} settings from it)" if env.file else "the environment (no PLANNER_MCP_CONFIG)"
    yield Check("config", "ok", f"settings from {where}; `planner-mcp config show` lists them")
    http = settings.http
    if settings.agents_path is not None:
        return  # whether HTTP could serve the agents file is the agents check's to say: it reads the file
    if http.token is None and not http.oauth:
        yield Check("http", "ok", "no HTTP callers configured: stdio only (PLANNER_MCP_HTTP_TOKEN or OAuth for HTTP)")
    elif (problem := http.problem()) is not None:
        yield Check("http", "fail", f"`serve --transport http` would not start: {problem}", problem)
    else:
        how = f"OAuth tokens from {shown(http.oauth_issuer or '')}" if http.oauth else "a static bearer token"
        yield Check(
            "http", "ok", f"`serve --transport http` would serve {shown(http.resource_url)} to callers with {how}"
        )
