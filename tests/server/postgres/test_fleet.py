"""A fleet on one PostgreSQL ledger: stateless HTTP replicas and stdio servers, each its own process, append one
chain, and it stays one chain through load, SIGKILLs at random moments and PostgreSQL stopped under load.

The servers are started as a host starts them, with PLANNER_MCP_LEDGER naming a writer role's URL. stdio servers
are driven with raw JSON-RPC lines (`tests.resilience.fleet`), so a kill keeps every reply the client had read;
HTTP replicas (`serve --transport http --stateless`) with the official client, one request per call. What the
ledger holds is read straight from the database afterwards and held against every reply a client received.
"""

import itertools
import os
import random
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, ExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx2
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from ledger import verify
from tests.conftest import init_ledger, rows
from tests.http_server import serving
from tests.postgres_cluster import PostgresCluster
from tests.resilience.fleet import RawServer, audit_ledger, raw_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.subprocess]

TOKEN = "fleet-http-token-0123456789abcdef"
_READS: list[tuple[str, dict[str, Any]]] = [
    ("read_docs", {"name": "backup-restore"}),
    ("list_docs", {}),
    ("read_inventory", {}),
    ("read_docs", {"name": "node-maintenance"}),
]
_REFUSALS = {"execute_shell": "FORBIDDEN_ACTION"}

Caller = Callable[[str, dict[str, Any]], Awaitable[tuple[bool, dict[str, Any]]]]
"""One call to one server: the tool and its arguments in, the reply's isError flag and structured content out."""


@asynccontextmanager
async def _stdio(url: str, home: Path, errlog: TextIO, name: str) -> AsyncIterator[Caller]:
    """A stdio server of its own, one call in flight at a time."""
    async with raw_server(home / "ledger", errlog, name, PLANNER_MCP_LEDGER=url) as server:
        await server.initialize()

        async def call(tool: str, args: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
            [ident] = await server.call_tools([(tool, args)])
            result = (await server.wait(ident))["result"]
            return bool(result["isError"]), result["structuredContent"]

        yield call


@asynccontextmanager
async def _http(endpoint: str) -> AsyncIterator[Caller]:
    """The official client to a stateless replica."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http,
        Client(streamable_http_client(endpoint, http_client=http)) as client,
    ):

        async def call(tool: str, args: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
            result = await client.call_tool(tool, args)
            assert result.structured_content is not None, result
            return result.is_error, result.structured_content

        yield call


def _replicas(stack: ExitStack, url: str, home: Path, count: int) -> list[str]:
    """`count` stateless HTTP replicas on the ledger; their MCP endpoints, once each accepts connections."""
    env = {"PLANNER_MCP_LEDGER": url, "PLANNER_MCP_HTTP_TOKEN": TOKEN}
    return [stack.enter_context(serving(home / "ledger", "--stateless", env=env)).url for _ in range(count)]


async def _callers(
    stack: AsyncExitStack, endpoints: list[str], stdio: list[AbstractAsyncContextManager[Caller]]
) -> list[Caller]:
    """A client to each replica, then each stdio server started and initialised; all closed with `stack`."""
    return [await stack.enter_async_context(opened) for opened in [*map(_http, endpoints), *stdio]]


def _expected(tool: str) -> tuple[str, str | None, bool]:
    """What a reply to `tool` must say when the ledger is up: (decision, error type, isError)."""
    refusal = _REFUSALS.get(tool)
    return ("ERROR", refusal, True) if refusal else ("EXECUTE", None, False)


def _reply(is_error: bool, content: dict[str, Any]) -> tuple[str, str | None, bool]:
    return content["decision"], (content.get("error") or {}).get("type"), is_error


# --- load -----------------------------------------------------------------------------------------------------------

REPLICAS, STDIO_SERVERS, CALLS_EACH = 3, 5, 500


def _plan(process: int) -> list[tuple[str, dict[str, Any]]]:
    """A process's calls: the reads in turn, every tenth call a refusal (recorded with no intent)."""
    return [
        ("execute_shell", {"command": "reboot"}) if n % 10 == 9 else _READS[(process + n) % len(_READS)]
        for n in range(CALLS_EACH)
    ]


Replies = list[tuple[str, bool, dict[str, Any]]]
"""Each call's tool, and the isError flag and structured content of its reply."""


async def _drive(call: Caller, plan: Iterable[tuple[str, dict[str, Any]]], replies: Replies) -> None:
    """Make the calls in order, keeping every reply (judged once all have ended, so a failure reads plainly)."""
    for tool, args in plan:
        replies.append((tool, *await call(tool, args)))


async def test_three_stateless_replicas_and_five_stdio_servers_append_one_chain_with_every_call_once(
    pg_ledger: str, tmp_path: Path
) -> None:
    events_before = len(rows(pg_ledger, "ledger_events"))
    replies: list[Replies] = [[] for _ in range(REPLICAS + STDIO_SERVERS)]
    with ExitStack() as replicas, (tmp_path / "stdio.log").open("w") as errlog:
        endpoints = _replicas(replicas, pg_ledger, tmp_path, REPLICAS)
        with anyio.fail_after(170):
            async with AsyncExitStack() as stack:
                callers = await _callers(stack, endpoints, [_stdio(pg_ledger, tmp_path, errlog, f"s{n}")
                                                            for n in range(STDIO_SERVERS)])  # fmt: skip
                async with anyio.create_task_group() as group:
                    for n, call in enumerate(callers):
                        group.start_soon(_drive, call, _plan(n), replies[n])

    wrong = [(tool, c.get("error")) for per in replies for tool, e, c in per if _reply(e, c) != _expected(tool)]
    assert not wrong, f"{len(wrong)} calls answered otherwise than the gate says, e.g. {wrong[:3]}"
    got = [{c["request_id"]: tool in _REFUSALS for tool, _, c in per_process} for per_process in replies]
    assert [len(g) for g in got] == [CALLS_EACH] * len(got), "a reply was lost, or two calls share a request id"
    answered = {rid: refused for per_process in got for rid, refused in per_process.items()}
    assert len(answered) == len(got) * CALLS_EACH, "two processes gave out the same request id"
    audit = audit_ledger(pg_ledger, answered)
    refusals = sum(answered.values())
    assert len(audit.outcomes) == len(answered) and len(audit.intents) == len(answered) - refusals
    assert not audit.incomplete
    events = len(rows(pg_ledger, "ledger_events"))
    assert events == events_before, "the load chained rows besides its calls' intents and outcomes"
    report = verify(pg_ledger)
    assert report.status == "ok" and report.findings == [], [str(f) for f in report.findings[:10]]
    assert report.rows == report.head_seq == audit.chained_rows == len(audit.outcomes) + len(audit.intents) + events
    # Interleaved, not one process after another: every process wrote both before and after every other's first.
    spans = [sorted(audit.outcomes[rid]["seq"] for rid in per_process) for per_process in got]
    assert all(mine[0] < theirs[-1] for mine in spans for theirs in spans), "the processes took turns, not at once"
    [metrics] = audit.metrics
    assert (metrics["total_runs"], metrics["refused_runs"]) == (len(answered), refusals)


# --- SIGKILLs -------------------------------------------------------------------------------------------------------

LANES, WRITER_KILLS, SERVER_KILLS = 4, 20, 5
"""Per lane, one after another: writers (a process recording calls through `ledger.Ledger`, which starts in a
fifth of a server's time) and stdio servers; 100 kills in all."""
MAX_DELAY = 0.3
"""Seconds after a process's first answer within which the kill comes (uniformly): mid-call, mid-commit, between."""
_MAX_IN_FLIGHT = 5
_WRITER = textwrap.dedent(
    """
    import itertools, os, sys
    from ledger import Intent, Ledger, Outcome
    ledger = Ledger(os.environ["PLANNER_MCP_LEDGER"], busy_timeout_s=30)
    for i in itertools.count():
        call = dict(request_id=f"{sys.argv[1]}-{i}", timestamp="t", agent_id="llm-planner-001",
                    agent_version="0.1.0", tier=0, action="read_docs", arguments={"i": i}, tools_digest="d")
        intent = ledger.record_intent(Intent(**call))
        ledger.record_outcome(Outcome(**call, decision="EXECUTE", confidence=1.0, success=True, intent_id=intent.id))
        print(call["request_id"], flush=True)  # the acknowledgement: the outcome is committed
    """
)


@dataclass
class _Kills:
    received: dict[str, bool] = field(default_factory=dict)
    """Request id -> whether refused, for every call whose answer (acknowledgement) a client read before the kill."""
    unanswered: set[str] = field(default_factory=set)
    """Calls sent to a server and never answered, by JSON-RPC id."""
    wrong: list[tuple[str, Any]] = field(default_factory=list)
    """Calls a server answered otherwise than the gate says, with the error they got."""
    kills: int = 0
    servers: int = 0


async def _writer_life(url: str, name: str, rng: random.Random, kills: _Kills) -> None:
    """A writer killed a random moment after its first acknowledgement; every line it finished is a received call."""
    process = await anyio.open_process(
        [sys.executable, "-c", _WRITER, name], env={**os.environ, "PLANNER_MCP_LEDGER": url}, stderr=subprocess.PIPE
    )
    async with process:
        assert process.stdout is not None
        stdout, lines = BufferedByteReceiveStream(process.stdout), []
        try:
            lines.append(await stdout.receive_until(b"\n", 1024))
        except anyio.IncompleteRead:
            assert process.stderr is not None
            why = (await process.stderr.receive()).decode()
            raise AssertionError(f"{name} ended before its first call: {why}") from None
        with anyio.move_on_after(rng.uniform(0, MAX_DELAY)):
            while True:
                lines.append(await stdout.receive_until(b"\n", 1024))
        process.send_signal(signal.SIGKILL)
        with suppress(anyio.IncompleteRead, anyio.EndOfStream):
            while True:  # what was in the pipe at the kill was received too; a line cut short was not
                lines.append(await stdout.receive_until(b"\n", 1024))
        assert await process.wait() == -signal.SIGKILL, f"{name} exited on its own"
    kills.received.update(dict.fromkeys((line.decode() for line in lines), False))


async def _calls_until_killed(server: RawServer, rng: random.Random) -> None:
    burst = rng.choice((1, 2, _MAX_IN_FLIGHT))  # several calls in flight at once, or one at a time
    while True:
        picks = [("execute_shell", {"command": "reboot"}) if rng.random() < 0.1 else rng.choice(_READS)
                 for _ in range(burst)]  # fmt: skip
        for ident in await server.call_tools(picks):
            await server.wait(ident)


def _tally(server: RawServer, kills: _Kills) -> None:
    for ident, request in server.requests.items():
        if request["method"] != "tools/call":
            continue
        if ident not in server.replies:
            kills.unanswered.add(ident)
            continue
        result, tool = server.replies[ident]["result"], request["params"]["name"]
        content = result["structuredContent"]
        if _reply(result["isError"], content) != _expected(tool):
            kills.wrong.append((ident, content.get("error")))
        kills.received[content["request_id"]] = tool in _REFUSALS


async def _server_life(url: str, home: Path, errlog: TextIO, name: str, rng: random.Random, kills: _Kills) -> None:
    async with raw_server(home / "ledger", errlog, name, PLANNER_MCP_LEDGER=url) as server:
        await server.initialize()
        with anyio.move_on_after(rng.uniform(0, MAX_DELAY)):
            await _calls_until_killed(server, rng)
        server.kill()
        assert await server.ended() == -signal.SIGKILL, f"{name} exited on its own"
    kills.servers += 1
    _tally(server, kills)


async def _lane(lane: int, seed: int, url: str, home: Path, kills: _Kills) -> None:
    with (home / f"lane-{lane}.log").open("w") as errlog:
        for life in range(WRITER_KILLS + SERVER_KILLS):
            rng = random.Random(f"{seed}/{lane}/{life}")  # each life's schedule replays from the seed alone
            with anyio.fail_after(60):
                if life % 5 == 4:
                    await _server_life(url, home, errlog, f"l{lane}s{life}", rng, kills)
                else:
                    await _writer_life(url, f"l{lane}w{life}", rng, kills)
            kills.kills += 1


async def test_writers_killed_at_random_moments_lose_no_answered_call_and_leave_one_chain(
    pg_ledger: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("PG_KILL_SEED", "2323"))
    print(f"PG_KILL_SEED={seed}")  # shown by pytest when the test fails: rerun with another to try other moments
    kills = _Kills()
    with anyio.fail_after(150):
        async with anyio.create_task_group() as group:
            for lane in range(LANES):
                group.start_soon(_lane, lane, seed, pg_ledger, tmp_path, kills)

    assert (kills.kills, kills.servers) == (LANES * (WRITER_KILLS + SERVER_KILLS), LANES * SERVER_KILLS)
    assert not kills.wrong, f"seed {seed}: calls answered otherwise than the gate says, e.g. {kills.wrong[:3]}"
    report = verify(pg_ledger)
    assert report.kinds() <= {"incomplete"}, (seed, [str(f) for f in report.findings if f.kind != "incomplete"])
    audit = audit_ledger(pg_ledger, kills.received)  # every answered call once, with its intent; seqs contiguous
    assert report.findings, f"seed {seed}: no kill landed mid-call; the test proved less than it says"
    assert {f.seq for f in report.findings} == {audit.intents[rid]["seq"] for rid in audit.incomplete}
    cut_off = {audit.intents[rid]["client_request_id"] for rid in audit.incomplete} - {None}
    assert cut_off <= kills.unanswered, f"seed {seed}: incomplete intents of answered calls: {cut_off}"
    assert len(audit.incomplete) <= LANES * (WRITER_KILLS + SERVER_KILLS * _MAX_IN_FLIGHT)
    [metrics] = audit.metrics
    assert metrics["total_runs"] == len(audit.outcomes)
    print(f"kills: {kills.kills} ({kills.servers} servers), {len(kills.received)} answers received, "
          f"{len(audit.outcomes)} outcomes, {len(audit.incomplete)} incomplete intents (seed {seed})")  # fmt: skip


# --- PostgreSQL stopped under load ----------------------------------------------------------------------------------


@dataclass
class _Outage:
    """Where the database is, as every caller sees it: a call is judged by the phase it was sent and answered in."""

    phase: str = "up"
    before: int = 0
    after: int = 0
    seen: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    """(phase sent, phase answered, tool, structured content) of every reply."""
    refused_by: set[int] = field(default_factory=set)
    """Callers that had a call refused while the database was down."""


async def _drive_through(call: Caller, who: int, outage: _Outage) -> None:
    for tool, args in itertools.cycle(_READS):
        if outage.phase == "done":
            return  # after its last answer: no call is cut off by the end of the test
        sent = outage.phase
        is_error, content = await call(tool, args)
        answered = outage.phase
        outage.seen.append((sent, answered, tool, content))
        if (sent, answered) == ("down", "down"):
            outage.refused_by.add(who)
        elif not is_error:
            outage.before += (sent, answered) == ("up", "up")
            outage.after += sent == "back"


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait, bounded, for the callers to have seen something; fail naming it."""
    with anyio.move_on_after(60):
        while not condition():
            await anyio.sleep(0.01)
        return
    raise AssertionError(f"not within 60 s: {what}")


async def test_postgresql_stopped_under_load_refuses_calls_then_serves_them_without_a_restart(
    pg_cluster_factory: Callable[..., PostgresCluster], tmp_path: Path
) -> None:
    cluster = pg_cluster_factory()
    url = init_ledger(cluster, cluster.create_database("fleet").rsplit("/", 1)[1])
    outage = _Outage()
    with ExitStack() as replicas, (tmp_path / "stdio.log").open("w") as errlog:
        endpoints = _replicas(replicas, url, tmp_path, 1)
        with anyio.fail_after(120):
            async with AsyncExitStack() as stack:
                callers = await _callers(stack, endpoints, [_stdio(url, tmp_path, errlog, f"s{n}") for n in range(3)])
                async with anyio.create_task_group() as group:
                    for who, call in enumerate(callers):
                        group.start_soon(_drive_through, call, who, outage)
                    await _until(lambda: outage.before >= 40, "40 calls served before the stop")
                    outage.phase = "stopping"
                    await anyio.to_thread.run_sync(cluster.stop, "fast")
                    outage.phase = "down"
                    await _until(lambda: len(outage.refused_by) == len(callers), "a call refused by every server")
                    outage.phase = "starting"
                    await anyio.to_thread.run_sync(cluster.start)
                    outage.phase = "back"
                    await _until(lambda: outage.after >= 40, "40 calls served after the restart")
                    outage.phase = "done"

    verdicts = [(sent, answered, _reply(False, content)[:2]) for sent, answered, _, content in outage.seen]
    unavailable = ("ERROR", "LEDGER_UNAVAILABLE")
    ok = {unavailable, ("EXECUTE", None)}
    assert all(v == unavailable for s, a, v in verdicts if (s, a) == ("down", "down"))
    assert all(v == ("EXECUTE", None) for s, a, v in verdicts if s in ("up", "back") and a == s)
    other = [(s, a, c.get("error")) for s, a, _, c in outage.seen if _reply(False, c)[:2] not in ok]
    assert not other, f"calls failed some other way: {other[:3]}"
    down = [c for s, a, _, c in outage.seen if (s, a) == ("down", "down")]
    assert all("127.0.0.1" in c["error"]["message"] for c in down), down[0]["error"]["message"]

    answered = {c["request_id"]: False for _, _, _, c in outage.seen if c["decision"] == "EXECUTE"}
    audit = audit_ledger(url, answered)  # every acknowledged call, before and after the restart, once
    report = verify(url)
    assert report.kinds() <= {"incomplete"}, [str(f) for f in report.findings]
    refused = {c["request_id"] for _, _, _, c in outage.seen if c["decision"] != "EXECUTE"}
    assert audit.incomplete <= refused, "a call cut off by the stop was answered as a success"
    assert report.rows == audit.chained_rows
