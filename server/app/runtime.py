"""What one served session owns (the ledger, the store, the LLM client and the gate over them), opened by the
server's lifespan and closed with it."""

import hashlib
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import anyio.to_thread
from mcp.types import Tool as MCPTool

from contracts import AgentOutput
from ledger import Ledger, LedgerError, Scrubber, utc_now
from server.app.views import AgentView
from server.call.progress import ReportProgress
from server.config.ledger import open_ledger
from server.config.settings import Settings
from server.governance.gate import Gate
from server.governance.spec import Deps
from server.llm import LLMClient
from server.stores import FileStore, ObservedStore, Store, VaultStore
from server.telemetry import NO_SIGNALS, BreakerState, BudgetLeft, Signals

__all__ = ["Runtime", "call_notes", "call_once", "open_runtime", "open_store", "server_version", "tools_digest"]

logger = logging.getLogger("server.app")  # its name before the regrouping: log collectors filter by it


def server_version() -> str:
    try:
        return version("planner-mcp")
    except PackageNotFoundError:
        return "0+unknown"


def tools_digest(tools: list[MCPTool]) -> str:
    """A digest of exactly what clients are shown, so a ledger row says which tool list a call was made under."""
    canonical = json.dumps([t.model_dump(mode="json", by_alias=True) for t in tools], sort_keys=True)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Runtime:
    """What one served session owns: the ledger, the store, the LLM client, and a gate over them for each agent."""

    gates: Mapping[str, Gate]
    """By agent id: each agent's calls pass its own gate (its policy, its tools, its budget), into one ledger."""
    default: str | None
    """The agent of calls that name no caller (stdio, in process), if there is one."""
    ledger: Ledger
    scrubber: Scrubber
    store: Store
    """The store itself (not the view monitoring reads through), for its breaker."""
    llm: LLMClient
    """The LLM client every gate shares, for its breaker."""

    def budgets(self) -> list[BudgetLeft]:
        """What each agent with a daily token budget has left of it today, as the ledger's chain has it (read at a
        scrape, in the scraper's thread; an agent whose figure the ledger cannot give now is left out)."""
        day = utc_now()[:10]
        found = []
        for agent_id, gate in self.gates.items():
            budget = gate.agent.daily_token_budget
            if budget is None:
                continue
            try:
                used = self.ledger.tokens_committed(agent_id, day)
            except LedgerError:
                continue
            found.append(BudgetLeft(agent_id=agent_id, budget=budget, left=max(0, budget - used)))
        return found

    def breakers(self) -> list[BreakerState]:
        """The circuit breakers of the dependencies this runtime calls, and their state now."""
        found = []
        if isinstance(self.store, VaultStore):
            found.append(BreakerState(dependency="vault", state=self.store.breaker.state))
        if not self.llm.config.missing():
            found.append(BreakerState(dependency="llm", state=self.llm.breaker.state))
        return found

    @property
    def gate(self) -> Gate:
        """The default agent's gate."""
        if self.default is None:
            raise LookupError("no default agent: set PLANNER_MCP_AGENT to one of the agents file's agents")
        return self.gates[self.default]

    async def record_refused_caller(self, detail: str) -> None:
        """Chain a `caller-refused` event: a caller the agents file gives to no agent was turned away. A ledger that
        cannot take it is logged; the caller is refused all the same."""
        try:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.ledger.record_event, "caller-refused", detail)
        except LedgerError as exc:
            logger.error("A refused caller could not be recorded in the ledger: %s (%s)", exc, detail)


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    agents: Sequence[AgentView],
    *,
    default: str | None = None,
    chain_key: bytes | None = None,
    signals: Signals = NO_SIGNALS,
) -> AsyncIterator[Runtime]:
    """Open the runtime for these agents, and the ledger with it. `default` is the agent of calls that name no
    caller; with one agent, it is that one.

    A ledger that cannot be opened (or fails its checks: WAL, durability, the chain's head, the key) is
    reported on stderr and refuses every call until it can, rather than stopping the server: the host then
    shows the reason on each call. `signals` hears each call, store read, LLM request and ledger write.
    """
    # One scrubber for the ledger, the gate and the LLM prompts: a secret learnt at run time (a token from
    # a login, the LLM key read from Vault) is scrubbed everywhere from then on.
    http_token = [] if settings.http.token is None else [settings.http.token.get_secret_value()]
    scrubber = Scrubber([*settings.llm.secrets(), *http_token])
    ledger = open_ledger(settings, scrubber, key=chain_key)
    observed = signals is not NO_SIGNALS
    if observed:
        ledger.observe = signals.ledger_written
    try:
        await anyio.to_thread.run_sync(ledger.open)
    except LedgerError as exc:
        logger.error("The audit ledger cannot be used, so every call will be refused until it can: %s", exc)
    store = open_store(settings, scrubber)
    llm = LLMClient(settings.llm, vault_key=store.llm_key, signals=signals)
    reads: Store = ObservedStore(store, signals) if observed else store
    notes = call_notes(settings)
    gates = {}
    for view in agents:
        deps = Deps(
            agent=view.agent,
            store=reads,
            llm=llm,
            scrubber=scrubber,
            ledger=ledger,
            default_inventory=settings.default_inventory,
        )
        digest = tools_digest(view.mcp_tools)
        gates[view.agent.agent_id] = Gate(
            agent=view.agent,
            tools=view.tools,
            deps=deps,
            ledger=ledger,
            tools_digest=digest,
            notes=notes,
            signals=signals,
        )
    if default is None and len(agents) == 1:
        default = agents[0].agent.agent_id
    try:
        yield Runtime(gates=gates, default=default, ledger=ledger, scrubber=scrubber, store=store, llm=llm)
    finally:
        # Shielded: a server stopped by a signal is cancelled, and still closes what it opened.
        with anyio.CancelScope(shield=True):
            await llm.aclose()
            await store.aclose()
            await anyio.to_thread.run_sync(ledger.close)


async def call_once(
    settings: Settings,
    view: AgentView,
    name: str,
    arguments: dict[str, Any],
    *,
    chain_key: bytes | None = None,
    report: ReportProgress | None = None,
) -> AgentOutput:
    """One call as `view`'s agent through a runtime of its own, opened and closed around it (the command line's
    `call`, `plan` and `analyze`): the same gate and ledger as any host's call."""
    async with open_runtime(settings, [view], chain_key=chain_key) as runtime:
        return await runtime.gate.call(name, arguments, report=report)


def open_store(settings: Settings, scrubber: Scrubber) -> Store:
    """Vault when VAULT_ADDR is set, else the file store."""
    if settings.vault is None:
        return FileStore(settings.data_dir, max_bytes=settings.max_document_bytes)
    if settings.vault.skip_verify:
        logger.warning(
            "VAULT_SKIP_VERIFY=true: the TLS certificate of Vault at %s is NOT verified; anyone on the path can "
            "read and change what the server receives. Every ledger row records this.",
            settings.vault.host,
        )
    return VaultStore(settings.vault, learn_secret=scrubber.add, max_bytes=settings.max_document_bytes)


def call_notes(settings: Settings) -> str:
    """What every ledger row must say about the conditions of its call."""
    if settings.vault is not None and settings.vault.skip_verify:
        return "vault-tls-unverified: VAULT_SKIP_VERIFY=true"
    return ""
