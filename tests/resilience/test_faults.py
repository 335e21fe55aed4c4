"""Each fault strikes mid-run and is then healed, in one server session, with no restart.

One connected client per fault: a call succeeds; the fault is injected; three calls each end within their
configured time limit with an error of the fault's own kind, whose message names the cause; the fault is
healed; the same calls succeed again. The ledger then verifies, and holds every call it could record, the
failed ones with their error type.

The faults are real ones on real peers: a Vault that is down, sealed, slow or denying; an LLM endpoint that
rate-limits, fails, answers garbage or hangs; a ledger that becomes read-only, fills up or is locked.
The narrower tests beside each capability (tests/server/vault/test_failures.py, tests/server/llm/test_retries.py,
tests/server/test_ledger_faults.py) cover each failure's details; these cover recovery within one session.

Two ledger faults need care. Read-only: permission bits do not stop a file already open, so the ledger's files
are made immutable (`chattr +i`, root only; skipped otherwise). Full: SQLite's page cap (PLANNER_MCP_LEDGER_MAX_MB)
stands in for the disk, and ballast rows for the other files that filled it (in agent_metrics, the one table whose
rows the server never reads back: a table of its own would change the schema, which the server refuses); deleting
them frees the room, in the same file. A full ledger may still take a call's intent and refuse its outcome (the
result is then withheld), so `ledger verify` finds those intents "incomplete", and only those.
"""

import json
import os
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio.to_thread
import openai  # noqa: F401  # imported ahead: the server imports it on its first LLM call, within that call's limit
import pytest
from mcp import Client

from ledger import verify
from server import Settings
from server.config.settings import LLMConfig
from tests.conftest import API_KEY, PLAN, call, connect, rows
from tests.file_access import read_only
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.peers.vault_server import FakeVault
from tests.vault_seed import SHIPPED_POLICY, TOKEN, parse_hcl

pytestmark = pytest.mark.anyio

Family = Literal["vault", "llm", "ledger"]
Phase = Literal["before", "filling", "fault", "after"]

_MARGIN_S = 1.0
"""What a failing call may take beyond its configured limit: the gate, the ledger and a loaded CI machine."""
_CAP = 128 * 1024
"""The ledger's size cap (PLANNER_MCP_LEDGER_MAX_MB) in the ledger faults: SQLite's page cap, a full disk's stand-in."""
_MAX_FILL_CALLS = 40

_CALLS: dict[Family, list[tuple[str, dict[str, Any]]]] = {
    "vault": [("read_docs", {"name": "vm-provisioning"}), ("list_docs", {}), ("read_inventory", {})],
    "llm": [
        ("generate_plan", {"description": "Add a VM"}),
        ("analyze", {"description": "Is the cluster healthy?"}),
        ("generate_plan", {"description": "Drain pve02"}),
    ],
    # list_docs first: the smallest row, so once it does not fit in a full ledger, no later call's does either.
    "ledger": [("list_docs", {}), ("read_docs", {"name": "backup-restore"}), ("generate_plan", {"description": "x"})],
}
_GOOD_REPLY = {
    "generate_plan": json.dumps(PLAN),
    "analyze": json.dumps({"analysis": "The cluster is healthy.", "confidence": 0.9}),
}


@dataclass
class _Logged:
    phase: Phase
    tool: str
    output: dict[str, Any]
    seconds: float
    llm_requests: int


@dataclass
class _Rig:
    client: Client
    llm: FakeOpenAI
    vault: FakeVault
    ledger_path: Path
    log: list[_Logged] = field(default_factory=list)

    async def call(self, phase: Phase, tool: str, args: dict[str, Any]) -> _Logged:
        if phase != "fault" and tool in _GOOD_REPLY:
            self.llm.enqueue(Reply.text(_GOOD_REPLY[tool]))
        asked = len(self.llm.chat_requests)
        started = time.monotonic()
        _, output = await call(self.client, tool, args)
        logged = _Logged(phase, tool, output, time.monotonic() - started, len(self.llm.chat_requests) - asked)
        self.log.append(logged)
        return logged


Active = Callable[[_Rig], AbstractAsyncContextManager[None]]


@dataclass(frozen=True)
class Fault:
    family: Family
    active: Active
    """Injects the fault on entry and heals it on exit."""
    error_type: str
    says: str
    """What the error message must say: the cause, in words an operator acts on."""
    llm_requests: int | None = 0
    """Requests each failing LLM call sends the endpoint: retries are bounded (max_retries 1). None: not fixed."""
    cuts_outcomes: bool = False
    """A call may have its intent recorded and its outcome refused (a full ledger takes a small row, not a large)."""


# -- Vault ------------------------------------------------------------------------------------------------------


@asynccontextmanager
async def _vault_down(rig: _Rig) -> AsyncIterator[None]:
    await anyio.to_thread.run_sync(rig.vault.stop)
    try:
        yield
    finally:
        await anyio.to_thread.run_sync(rig.vault.start)  # the same port, the same state


def _vault_set(attribute: str, faulty: Any, healthy: Any) -> Active:
    @asynccontextmanager
    async def active(rig: _Rig) -> AsyncIterator[None]:
        setattr(rig.vault, attribute, faulty)
        try:
            yield
        finally:
            setattr(rig.vault, attribute, healthy)

    return active


@asynccontextmanager
async def _vault_policy_removed(rig: _Rig) -> AsyncIterator[None]:
    rig.vault.add_policy("planner", {})  # an operator emptied the token's policy; the token itself is fine
    try:
        yield
    finally:
        rig.vault.add_policy("planner", parse_hcl(SHIPPED_POLICY.read_text(encoding="utf-8")))


@asynccontextmanager
async def _vault_token_revoked(rig: _Rig) -> AsyncIterator[None]:
    rig.vault.revoke(TOKEN)
    try:
        yield
    finally:
        rig.vault.add_token(TOKEN, policies=["planner"])  # re-issued with the same id (`vault token create -id`)


# -- LLM endpoint -----------------------------------------------------------------------------------------------


def _llm_answers(reply: Reply) -> Active:
    @asynccontextmanager
    async def active(rig: _Rig) -> AsyncIterator[None]:
        rig.llm.default = reply  # every request, retries included, until healed
        try:
            yield
        finally:
            rig.llm.default = None

    return active


# -- Ledger -----------------------------------------------------------------------------------------------------


@asynccontextmanager
async def _ledger_read_only(rig: _Rig) -> AsyncIterator[None]:
    if os.geteuid() != 0:
        # Permission bits do not stop a file already open; only the immutable flag (root's) does.
        pytest.skip("making an open ledger read-only mid-run needs root (`chattr +i`)")
    # The database and its WAL, where commits go. Not the -shm index: SQLite writes it through a shared memory map,
    # and a write fault there is a SIGBUS that kills the process, whatever the server does.
    with ExitStack() as stack:
        for suffix in ("", "-wal"):
            stack.enter_context(read_only(rig.ledger_path.with_name(rig.ledger_path.name + suffix)))
        yield


@asynccontextmanager
async def _ledger_locked(rig: _Rig) -> AsyncIterator[None]:
    holder = sqlite3.connect(rig.ledger_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another program holds SQLite's write lock past the busy timeout
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@contextmanager
def _ballast(path: Path) -> Iterator[None]:
    """Take every free page up to the cap (what other files do to a disk), and give them back on exit."""
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        page = holder.execute("PRAGMA page_size").fetchone()[0]
        holder.execute(f"PRAGMA max_page_count = {_CAP // page}")
        pieces = 0
        for size in (16 * page, page, 16):  # large pieces first, then the crumbs
            while True:
                try:
                    holder.execute(
                        "INSERT INTO agent_metrics (agent_id, last_active_at) VALUES (?, zeroblob(?))",
                        (f"ballast-{pieces}", size),
                    )
                    pieces += 1
                except sqlite3.OperationalError as exc:
                    assert exc.sqlite_errorcode == sqlite3.SQLITE_FULL, exc
                    break
        yield
    finally:
        # Its pages go to the free list: room, in the same file.
        holder.execute("DELETE FROM agent_metrics WHERE agent_id LIKE 'ballast-%'")
        holder.close()


@asynccontextmanager
async def _ledger_full(rig: _Rig) -> AsyncIterator[None]:
    with _ballast(rig.ledger_path):
        # What is left is the room inside the ledger's own last pages: calls use it up, then are refused.
        for _ in range(_MAX_FILL_CALLS):
            if (await rig.call("filling", "list_docs", {})).output["error"] is not None:
                break
        else:
            pytest.fail(f"the ledger still took calls after {_MAX_FILL_CALLS}: the ballast left room")
        yield


FAULTS: dict[str, Fault] = {
    "vault-down": Fault("vault", _vault_down, "VAULT_UNREACHABLE", "could not be reached"),
    "vault-sealed": Fault("vault", _vault_set("sealed", True, False), "VAULT_SEALED", "is sealed"),
    "vault-slow": Fault("vault", _vault_set("delay", 5.0, 0.0), "VAULT_TIMEOUT", "did not answer within 0.5 s"),
    "vault-policy-removed": Fault("vault", _vault_policy_removed, "VAULT_PERMISSION_DENIED", "denied"),
    "vault-token-revoked": Fault("vault", _vault_token_revoked, "VAULT_AUTH_FAILED", "refused the token"),
    "llm-429-retry-after": Fault(
        "llm",
        _llm_answers(Reply.error(429, headers={"Retry-After": "60"})),
        "LLM_RATE_LIMITED",
        "HTTP 429): it asked to retry after 60 s",
        llm_requests=1,
    ),
    "llm-429": Fault("llm", _llm_answers(Reply.error(429)), "LLM_RATE_LIMITED", "HTTP 429): 2 attempts", 2),
    "llm-500": Fault("llm", _llm_answers(Reply.error(500)), "LLM_UNAVAILABLE", "HTTP 500): 2 attempts", 2),
    "llm-garbage-text": Fault(
        "llm", _llm_answers(Reply(body="<html>502 Bad Gateway</html>")), "LLM_INVALID_REPLY", "chat completion", 1
    ),
    "llm-garbage-truncated-json": Fault(
        "llm",
        _llm_answers(Reply(body='{"id": "chatcmpl-1", "cho', headers={"Content-Type": "application/json"})),
        "LLM_INVALID_REPLY",
        "not valid JSON",
        1,
    ),
    "llm-json-not-a-completion": Fault(
        "llm", _llm_answers(Reply(body={"object": "list", "data": []})), "LLM_INVALID_REPLY", "chat completion", 1
    ),
    "llm-hang": Fault("llm", _llm_answers(Reply.hang(30)), "LLM_TIMEOUT", "did not answer within this call's limit", 1),
    "ledger-read-only": Fault("ledger", _ledger_read_only, "LEDGER_UNAVAILABLE", "read-only"),
    "ledger-full": Fault("ledger", _ledger_full, "LEDGER_UNAVAILABLE", "is full", None, cuts_outcomes=True),
    "ledger-locked": Fault("ledger", _ledger_locked, "LEDGER_UNAVAILABLE", "locked"),
}


def _settings(
    family: Family, make_settings: Callable[..., Settings], vault_settings: Callable[..., Settings], llm: FakeOpenAI
) -> Settings:
    if family == "vault":
        return vault_settings({"timeout_s": 0.5, "retries": 1})
    config = LLMConfig(api_key=API_KEY, base_url=llm.base_url, model="test-model", timeout_s=1.5, max_retries=1)
    if family == "llm":
        return make_settings(llm=config)
    llm.default = Reply.text(_GOOD_REPLY["generate_plan"])  # a call whose intent is recorded is answered at once
    return make_settings(llm=config, ledger_busy_timeout_s=0.5, ledger_max_bytes=_CAP)


def _limit_s(family: Family, settings: Settings) -> float:
    """The time limit the configuration sets on one call in this fault's path."""
    if family == "vault":
        assert settings.vault is not None
        return settings.vault.timeout_s * (settings.vault.retries + 1)  # per request; at most retries + 1 of them
    if family == "llm":
        return settings.llm.timeout_s  # the whole call, retries included
    return settings.ledger_busy_timeout_s


def _check_calls(fault: Fault, log: list[_Logged], limit_s: float) -> None:
    """Every call during the fault failed in time with the fault's error, naming its cause; every other succeeded."""
    for logged in log:
        error = logged.output["error"]
        if logged.phase == "fault":
            assert error is not None and error["type"] == fault.error_type, (logged.tool, logged.output)
            assert fault.says in error["message"], error["message"]
            assert logged.seconds <= limit_s + _MARGIN_S, (logged.tool, logged.seconds, limit_s)
            if fault.llm_requests is not None:
                assert logged.llm_requests == (fault.llm_requests if logged.tool in _GOOD_REPLY else 0), logged.tool
        elif logged.phase != "filling":  # filling: calls succeed until the ledger is full (checked there)
            assert error is None, (logged.phase, logged.tool, error)


def _check_ledger(fault: Fault, log: list[_Logged], ledger_path: Path) -> None:
    """The ledger verifies, and holds every call it could record: each failed one with its error type."""
    recorded = {r["request_id"]: r["error_type"] for r in rows(ledger_path)}
    refused = set()
    for logged in log:
        request_id, error = logged.output["request_id"], logged.output["error"]
        if error is None:
            assert recorded[request_id] is None
        elif fault.family == "ledger":
            assert request_id not in recorded  # its outcome could not be written
            refused.add(request_id)
        else:
            assert recorded[request_id] == fault.error_type
    report = verify(ledger_path)
    if not fault.cuts_outcomes:
        assert report.status == "ok", [str(f) for f in report.findings]
        return
    # An intent that fitted whose outcome did not: "incomplete", and only for calls that were refused.
    assert report.kinds() <= {"incomplete"}, [str(f) for f in report.findings]
    cut = {m.group(1) for f in report.findings if (m := re.search(r"\(request (\w+)\)", f.detail))}
    assert cut <= refused and len(cut) == len(report.findings)


@pytest.mark.parametrize("name", FAULTS)
async def test_a_fault_mid_run_fails_calls_in_time_with_its_own_error_and_heals_without_a_restart(
    name: str,
    make_settings: Callable[..., Settings],
    vault_settings: Callable[..., Settings],
    vault: FakeVault,
    llm: FakeOpenAI,
    ledger_path: Path,
) -> None:
    fault = FAULTS[name]
    settings = _settings(fault.family, make_settings, vault_settings, llm)
    calls = _CALLS[fault.family]
    async with connect(settings) as client:
        rig = _Rig(client, llm, vault, ledger_path)
        await rig.call("before", *calls[0])
        async with fault.active(rig):
            for tool, args in calls:
                await rig.call("fault", tool, args)
        for tool, args in calls:  # healed: the same session, no restart
            await rig.call("after", tool, args)
    _check_calls(fault, rig.log, _limit_s(fault.family, settings))
    _check_ledger(fault, rig.log, ledger_path)
