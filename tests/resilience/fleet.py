"""Real `planner-mcp serve` processes on stdio for the load and crash tests, and the audit of what they recorded.

A server is started as a host starts it (a near-empty environment naming the ledger), with its stderr in a file
(a pipe nobody reads could fill and block it). It is driven either by the official client (`official_client`) or
by raw JSON-RPC lines (`raw_server`), which cost the test almost nothing per call and let it kill the process at
any moment while keeping every reply line that reached it before the kill.
"""

import json
import signal
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client
from mcp.client.stdio import stdio_client

from ledger.chain import TABLES
from tests.conftest import API_KEY, rows
from tests.processes import host_env, server_command, stdio_params

__all__ = [
    "LedgerAudit",
    "RawServer",
    "ServerGone",
    "audit_ledger",
    "llm_env",
    "official_client",
    "raw_server",
]

_MAX_LINE = 16 * 1024 * 1024
_SHOWN = 5  # ids named in a failure message: enough to look them up, few enough to read


def llm_env(base_url: str) -> dict[str, str]:
    """The environment that points a server at an OpenAI-compatible peer on loopback."""
    return {"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": API_KEY, "PLANNER_MCP_MODEL": "test-model"}


@asynccontextmanager
async def official_client(
    ledger_path: Path, errlog: TextIO, *, mode: str = "auto", **env: str
) -> AsyncIterator[Client]:
    """The official client over stdio to a server process of its own, whose stderr goes to `errlog`."""
    params = stdio_params(host_env(ledger_path, **env), "serve")
    async with Client(stdio_client(params, errlog=errlog), mode=mode) as client:
        yield client


class ServerGone(Exception):
    """The server's stdout ended before it answered the request waited for."""


class RawServer:
    """A server process spoken to in newline-delimited JSON-RPC. A reader task keeps every complete reply line,
    including those still in the pipe when the process was killed: a client that read them received them.

    Request ids are `<name>-<n>` strings, unique across servers given distinct names: the ledger keeps them (as
    `client_request_id`), so a row can be traced to the request that caused it."""

    def __init__(self, process: Process, name: str) -> None:
        self.process = process
        self.name = name
        self.requests: dict[str, dict[str, Any]] = {}
        """Every request sent (or being sent), by id."""
        self.replies: dict[str, dict[str, Any]] = {}
        self._arrived: dict[str, anyio.Event] = {}
        self._ended = anyio.Event()
        self._count = 0

    async def initialize(self) -> None:
        """The handshake: initialize, its answer, then notifications/initialized."""
        client = {"name": "resilience-test", "version": "1"}
        params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": client}
        [ident] = await self.send([("initialize", params)])
        reply = await self.wait(ident)
        assert "result" in reply, reply
        await self._write([{"jsonrpc": "2.0", "method": "notifications/initialized"}])

    async def call_tools(self, calls: Iterable[tuple[str, dict[str, Any]]]) -> list[str]:
        """Send tools/call requests in one write (so several are in flight at once); return their ids."""
        return await self.send(("tools/call", {"name": name, "arguments": args}) for name, args in calls)

    async def send(self, requests: Iterable[tuple[str, dict[str, Any]]]) -> list[str]:
        messages: list[dict[str, Any]] = []
        for method, params in requests:
            self._count += 1
            ident = f"{self.name}-{self._count}"
            messages.append({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
            # Noted before the write, so a reply to a request whose write was interrupted is still matched.
            self.requests[ident] = messages[-1]
            self._arrived[ident] = anyio.Event()
        await self._write(messages)
        return [m["id"] for m in messages]

    async def wait(self, ident: str) -> dict[str, Any]:
        await self._arrived[ident].wait()
        if ident not in self.replies:
            raise ServerGone(f"the server's stdout ended before it answered request {ident}")
        return self.replies[ident]

    def kill(self) -> None:
        if self.process.returncode is None:
            with suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)

    async def ended(self) -> int:
        """Wait for the process to exit and its stdout to be read to the end; return its exit code."""
        await self._ended.wait()
        return await self.process.wait()

    @property
    def unanswered(self) -> set[str]:
        return set(self.requests) - set(self.replies)

    async def _write(self, messages: Sequence[dict[str, Any]]) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send("".join(json.dumps(m) + "\n" for m in messages).encode())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        stdout = BufferedByteReceiveStream(self.process.stdout)
        try:
            while True:
                try:
                    line = await stdout.receive_until(b"\n", _MAX_LINE)
                except (anyio.IncompleteRead, anyio.EndOfStream, anyio.ClosedResourceError):
                    return  # a last line without its newline was cut short by the kill: never received
                message = json.loads(line)
                ident = message.get("id")
                if ident in self._arrived and ("result" in message or "error" in message):
                    self.replies[ident] = message
                    self._arrived[ident].set()
        finally:
            self._ended.set()
            for event in self._arrived.values():
                event.set()  # wake every waiter: what has no reply by now will never have one


@asynccontextmanager
async def raw_server(ledger_path: Path, errlog: TextIO, name: str, **env: str) -> AsyncIterator[RawServer]:
    """A server process with a reader task (see `RawServer` for `name`); killed on the way out whatever happened
    inside."""
    process = await anyio.open_process(
        server_command("serve"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errlog,
        env=host_env(ledger_path, **env),
    )
    server = RawServer(process, name)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(server._read)
            try:
                yield server
            finally:
                server.kill()  # ends the reader too: the process's stdout closes with it
    finally:
        with anyio.CancelScope(shield=True):
            server.kill()
            await process.aclose()


@dataclass(frozen=True)
class LedgerAudit:
    """What the ledger file holds, read straight from it, by request id."""

    outcomes: dict[str, dict[str, Any]]
    intents: dict[str, dict[str, Any]]
    incomplete: set[str]
    """Request ids of intents without an outcome: calls a kill cut off."""
    chained_rows: int
    metrics: list[dict[str, Any]]


def _few(ids: Iterable[str]) -> list[str]:
    return sorted(ids)[:_SHOWN]


def audit_ledger(path: Path | str, answered: Mapping[str, bool]) -> LedgerAudit:
    """Check that every answered call (request id -> whether it was refused) is recorded as the gate promises, and
    return what the ledger holds.

    Each request id is in agent_actions at most once and every answered one is there; an allowed call has exactly
    one intent, which its outcome names; a refused call has none; no outcome names an intent of another call; the
    chain's sequence numbers, over every chained table, run from 1 without a gap or a repeat."""
    outcome_rows, intent_rows = rows(path), rows(path, "call_intents")
    outcome_counts = Counter(r["request_id"] for r in outcome_rows)
    intent_counts = Counter(r["request_id"] for r in intent_rows)
    assert not [k for k, n in outcome_counts.items() if n > 1], "request ids recorded twice in agent_actions"
    assert not [k for k, n in intent_counts.items() if n > 1], "request ids recorded twice in call_intents"
    outcomes = {r["request_id"]: r for r in outcome_rows}
    intents = {r["request_id"]: r for r in intent_rows}
    intent_by_id = {r["id"]: r for r in intent_rows}

    missing = set(answered) - set(outcomes)
    assert not missing, f"{len(missing)} answered call(s) have no outcome, e.g. {_few(missing)}"
    refused = {rid for rid, was_refused in answered.items() if was_refused}
    wrong_refusals = {rid for rid in refused if outcomes[rid]["refused"] != 1 or outcomes[rid]["intent_id"]}
    assert not wrong_refusals, f"refused calls not recorded as refusals: {_few(wrong_refusals)}"
    assert not refused & set(intents), f"refused calls with an intent: {_few(refused & set(intents))}"
    allowed = set(answered) - refused
    no_intent = allowed - set(intents)
    assert not no_intent, f"{len(no_intent)} answered call(s) have no intent, e.g. {_few(no_intent)}"
    # Every outcome, answered or not, names its own call's intent (or none, for a refusal).
    misnamed = {
        rid
        for rid, o in outcomes.items()
        if o["intent_id"] is not None and intent_by_id.get(o["intent_id"], {}).get("request_id") != rid
    }
    assert not misnamed, f"outcomes naming another call's intent: {_few(misnamed)}"
    unnamed = {rid for rid in allowed if outcomes[rid]["intent_id"] != intents[rid]["id"]}
    assert not unnamed, f"outcomes of allowed calls that do not name their intent: {_few(unnamed)}"

    seqs = sorted(r["seq"] for table in TABLES for r in rows(path, table))
    assert seqs == list(range(1, len(seqs) + 1)), "the chain's sequence numbers have a gap or a repeat"
    named = {o["intent_id"] for o in outcome_rows}
    incomplete = {rid for rid, i in intents.items() if i["id"] not in named}
    metrics = rows(path, "agent_metrics", order="agent_id")
    return LedgerAudit(outcomes, intents, incomplete, len(seqs), metrics)
