"""Local reads that arrive while a trip is under way share the next one: one transaction for their intents, then
their reads, then one for their outcomes. Each call still has its intent committed before its read and its
outcome committed before its answer; a call that fails on its own fails alone, and a cancel loses no record.

Calls are made to queue by holding the ledger's lock: the first call's trip waits for it, and the calls made
meanwhile wait for the next trip.
"""

import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from contracts import AgentOutput, Decision, TokenUsage
from ledger import verify
from server.app import open_runtime
from server.app.runtime import Runtime
from server.app.views import AgentView
from server.config.settings import BUNDLED_DATA, Settings
from server.governance.policy import load_policy
from server.governance.spec import LOCAL_READ, Args, Deps, LLMCall, ToolResult, ToolSpec
from server.governance.trips import MOST
from server.llm import LLMReply
from server.stores.base import LocalReads
from server.tools import registered_tools
from tests.conftest import rows, until
from tests.file_access import file_accesses_under

pytestmark = pytest.mark.anyio

_Calls = list[tuple[str, dict[str, Any]]]


async def _queued_behind_one(runtime: Runtime, calls: _Calls, events: list[str] | None = None) -> list[AgentOutput]:
    """A first `read_inventory`, its trip held up on the ledger's lock until every one of `calls` has queued for
    the next trip; the outputs of `calls`, in order. Each answer is noted in `events` as it comes."""
    gate, outputs = runtime.gate, [None] * len(calls)

    async def one(i: int, name: str, arguments: dict[str, Any]) -> None:
        output = await gate.call(name, arguments, client_request_id=str(i))
        if events is not None:
            events.append(f"answer {output.request_id}")
        if i >= 0:
            outputs[i] = output  # type: ignore[call-overload]

    with _held(runtime.ledger._lock) as release:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(one, -1, "read_inventory", {})
            await until(lambda: gate._trips._running)
            for i, (name, arguments) in enumerate(calls):
                tasks.start_soon(one, i, name, arguments)
            await until(lambda: len(gate._trips._queue) == len(calls))
            release()
    return outputs  # type: ignore[return-value]


@contextmanager
def _held(lock: threading.Lock) -> Iterator[Callable[[], None]]:
    """`lock` held until the function given is called, or the block is left (a failed wait)."""
    held = [True]

    def release() -> None:
        if held[0]:
            held[0] = False
            lock.release()

    lock.acquire()
    try:
        yield release
    finally:
        release()


@contextmanager
def _timeline(runtime: Runtime) -> Iterator[list[str]]:
    """What the ledger's connection runs and what the store opens, in the order they happen, in one list."""
    with file_accesses_under(BUNDLED_DATA) as events:

        def traced(conn: sqlite3.Connection) -> None:
            conn.set_trace_callback(events.append)

        runtime.ledger._with_connection(traced)  # type: ignore[arg-type]
        yield events


def _steps(events: list[str]) -> list[str]:
    """The events as steps: intent, read, outcome, COMMIT (answers and other statements left out)."""
    steps = []
    for event in events:
        if event.startswith("INSERT INTO call_intents"):
            steps.append("intent")
        elif event.startswith("INSERT INTO agent_actions"):
            steps.append("outcome")
        elif event == "COMMIT":
            steps.append("COMMIT")
        elif event.endswith(".json"):
            steps.append("read")
    return steps


def _trip(n: int) -> list[str]:
    return ["intent"] * n + ["COMMIT"] + ["read"] * n + ["outcome"] * n + ["COMMIT"]


async def test_reads_made_during_a_trip_share_the_next_each_intent_committed_before_its_read_and_answer_after(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    settings = make_settings()
    agent = load_policy(settings.policy_path)
    async with open_runtime(settings, [AgentView(agent, registered_tools(agent))]) as runtime:
        await runtime.gate.call("list_docs", {})  # the ledger opened
        with _timeline(runtime) as events:
            outputs = await _queued_behind_one(runtime, [("read_inventory", {})] * (MOST + 1), events)
    assert all(o.decision is Decision.EXECUTE for o in outputs)
    # The first call's trip; the next takes as many as a trip may; the last call comes in a trip of its own.
    assert _steps(events) == _trip(1) + _trip(MOST) + _trip(1)
    for output in outputs:  # each answer comes after the commit that holds its outcome
        outcome = next(i for i, e in enumerate(events) if e.startswith("INSERT INTO agent_actions") and
                       f"'{output.request_id}'" in e)  # fmt: skip
        committed = events.index("COMMIT", outcome)
        assert events.index(f"answer {output.request_id}") > committed
    intents, outcomes = rows(ledger_path, "call_intents"), rows(ledger_path)
    assert len(intents) == len(outcomes) == MOST + 3
    assert [o["intent_id"] for o in outcomes] == [i["id"] for i in intents]
    assert verify(ledger_path).status == "ok"


def _too_large_to_store(args: Args, deps: Deps, store: LocalReads) -> ToolResult:
    reply = LLMReply(content="{}", model="m", usage=TokenUsage(prompt_tokens=2**63, completion_tokens=1))
    return ToolResult(
        decision=Decision.EXECUTE, confidence=1.0,
        llm=LLMCall(reply=reply, endpoint_host="llm.example", prompt_digest="sha256:0"),
    )  # fmt: skip


async def _never_async(args: Args, deps: Deps) -> ToolResult:
    raise AssertionError("a local read runs its blocking capability")


_PROBE = ToolSpec("probe", "probe", "A local read whose outcome cannot be stored.", ("read_docs",), Args,
                  _never_async, LOCAL_READ, local=_too_large_to_store)  # fmt: skip


async def test_a_call_whose_outcome_cannot_be_stored_fails_alone_and_the_others_in_its_trip_are_answered(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    settings = make_settings()
    agent = load_policy(settings.policy_path)
    async with open_runtime(settings, [AgentView(agent, {**registered_tools(agent), "probe": _PROBE})]) as runtime:
        before, probe, after = await _queued_behind_one(
            runtime, [("read_inventory", {}), ("probe", {}), ("read_docs", {"name": "backup-restore"})]
        )
    assert before.decision is Decision.EXECUTE and after.decision is Decision.EXECUTE
    assert probe.error is not None and probe.error.type == "INTERNAL_ERROR"
    intents, outcomes = rows(ledger_path, "call_intents"), rows(ledger_path)
    # The probe's outcome fell out of the shared commit; the INTERNAL_ERROR recorded in its place follows it.
    assert [(o["action"], o["error_type"], o["client_request_id"]) for o in outcomes] == [
        ("read_inventory", None, "-1"),
        ("read_inventory", None, "0"),
        ("read_docs", None, "2"),
        ("probe", "INTERNAL_ERROR", "1"),
    ]
    by_client = {i["client_request_id"]: i["id"] for i in intents}
    assert all(o["intent_id"] == by_client[o["client_request_id"]] for o in outcomes)
    assert verify(ledger_path).status == "ok"


async def test_calls_cancelled_while_waiting_for_their_trip_are_still_read_and_recorded_in_full(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    settings = make_settings()
    agent = load_policy(settings.policy_path)
    async with open_runtime(settings, [AgentView(agent, registered_tools(agent))]) as runtime:
        gate = runtime.gate
        with _held(runtime.ledger._lock) as release:
            async with anyio.create_task_group() as tasks:
                for i in range(4):
                    tasks.start_soon(functools.partial(gate.call, "read_inventory", {}, client_request_id=str(i)))
                await until(lambda: len(gate._trips._queue) == 3)
                tasks.cancel_scope.cancel()
                release()
        after = await gate.call("read_inventory", {}, client_request_id="after")
    assert after.decision is Decision.EXECUTE
    outcomes = rows(ledger_path)
    assert sorted(o["client_request_id"] for o in outcomes) == ["0", "1", "2", "3", "after"]
    assert all(o["error_type"] is None for o in outcomes)  # each read ran: the cancel came after it was queued
    assert verify(ledger_path).status == "ok"


class _Bug(BaseException):
    """What no read should raise: not an Exception, so no handler of the gate's takes it for a failed read."""


def _buggy(args: Args, deps: Deps, store: LocalReads) -> ToolResult:
    raise _Bug


async def test_a_trip_that_breaks_fails_the_calls_it_held_and_the_next_trip_still_runs(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    settings = make_settings()
    agent = load_policy(settings.policy_path)
    buggy = ToolSpec("buggy", "buggy", "A local read that breaks its trip.", ("read_docs",), Args, _never_async,
                     LOCAL_READ, local=_buggy)  # fmt: skip
    async with open_runtime(settings, [AgentView(agent, {**registered_tools(agent), "buggy": buggy})]) as runtime:
        with pytest.raises(BaseExceptionGroup) as raised:
            await _queued_behind_one(runtime, [("read_inventory", {}), ("buggy", {}), ("read_inventory", {})])
        after = await runtime.gate.call("read_inventory", {}, client_request_id="after")
    assert all(isinstance(e, _Bug) for e in raised.value.exceptions) and len(raised.value.exceptions) == 3
    assert after.decision is Decision.EXECUTE
    # The broken trip's intents stay without outcomes (verify names them); the calls before and after are whole.
    assert [o["client_request_id"] for o in rows(ledger_path)] == ["-1", "after"]
    assert len(rows(ledger_path, "call_intents")) == 5
