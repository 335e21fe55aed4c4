"""A read-only, full, locked or tampered ledger refuses every call before anything is read or asked.

Each case is a real fault on a real file: an immutable file (or one without write permission), SQLite's
page cap (`max_page_count`, what a full disk looks like to SQLite), and another process holding a lock.
"""

import fcntl
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from ledger import Intent, Ledger, LedgerError, verify
from server import Settings
from server.config.settings import BUNDLED_DATA, LLMConfig
from tests.conftest import API_KEY, call, call_once, connect, rows
from tests.file_access import file_accesses_under, read_only
from tests.peers.openai_server import FakeOpenAI

pytestmark = pytest.mark.anyio

_EVERY_TOOL: list[tuple[str, dict[str, Any]]] = [
    ("read_docs", {"name": "backup-restore"}),
    ("list_docs", {}),
    ("read_inventory", {}),
    ("generate_plan", {"description": "Add a VM"}),
    ("analyze", {"description": "Is the cluster healthy?"}),
    ("read_logs", {}),
]


def _settings(make_settings: Callable[..., Settings], llm: FakeOpenAI, **overrides: Any) -> Settings:
    config = LLMConfig(api_key=API_KEY, base_url=llm.base_url, model="test-model", timeout_s=5, max_retries=0)
    return make_settings(llm=config, **overrides)


async def _every_call_is_refused(settings: Settings, llm: FakeOpenAI, says: str) -> None:
    """Every tool is refused with LEDGER_UNAVAILABLE naming the cause; no store file is opened, no LLM asked."""
    async with connect(settings) as client:
        with file_accesses_under(BUNDLED_DATA) as seen:
            for tool, args in _EVERY_TOOL:
                result, output = await call(client, tool, args)
                assert result.is_error and output["error"]["type"] == "LEDGER_UNAVAILABLE", (tool, output)
                assert says in output["error"]["message"], output["error"]["message"]
    assert seen == []
    assert llm.requests == []


def _intent(n: int) -> Intent:
    return Intent(
        request_id=f"filler-{n}", timestamp="2026-11-24T00:00:00.000Z", agent_id="llm-planner-001",
        agent_version="0.1.0", tier=0, action="read_docs", arguments={"name": "backup-restore"}, tools_digest="d",
    )  # fmt: skip


def _create(path: Path) -> None:
    """An existing ledger, closed cleanly."""
    ledger = Ledger(path)
    ledger.open()
    ledger.close()


async def test_a_read_only_ledger_refuses_every_call_and_says_so(
    make_settings: Callable[..., Settings], llm: FakeOpenAI, ledger_path: Path
) -> None:
    _create(ledger_path)
    with read_only(ledger_path):
        await _every_call_is_refused(_settings(make_settings, llm), llm, "read-only")
    assert [r["kind"] for r in rows(ledger_path, "ledger_events")] == ["schema"]  # nothing was added


async def test_a_full_ledger_refuses_every_call_and_says_so(
    make_settings: Callable[..., Settings], llm: FakeOpenAI, ledger_path: Path
) -> None:
    cap = 96 * 1024
    ledger = Ledger(ledger_path, max_bytes=cap)
    with pytest.raises(LedgerError) as full:  # fill until SQLite reports the disk full
        for n in range(10_000):
            ledger.record_intent(_intent(n))
    ledger.close()
    assert full.value.reason == "full"
    recorded = len(rows(ledger_path, "call_intents"))
    await _every_call_is_refused(_settings(make_settings, llm, ledger_max_bytes=cap), llm, "is full")
    assert len(rows(ledger_path, "call_intents")) == recorded  # nothing already recorded was lost


async def test_a_ledger_locked_past_the_busy_timeout_refuses_every_call_then_recovers(
    make_settings: Callable[..., Settings], llm: FakeOpenAI, ledger_path: Path
) -> None:
    _create(ledger_path)
    holder = sqlite3.connect(ledger_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another program holds SQLite's write lock
    settings = _settings(make_settings, llm, ledger_busy_timeout_s=0.2)
    try:
        await _every_call_is_refused(settings, llm, "locked")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    result, _ = await call_once(settings, "list_docs")
    assert not result.is_error


async def test_a_planner_process_holding_the_ledger_past_the_busy_timeout_refuses_every_call(
    make_settings: Callable[..., Settings], llm: FakeOpenAI, ledger_path: Path
) -> None:
    _create(ledger_path)
    with open(ledger_path.with_name("ledger.db.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # what a stuck planner-mcp process would hold
        await _every_call_is_refused(_settings(make_settings, llm, ledger_busy_timeout_s=0.2), llm, "busy")


async def test_a_lock_released_within_the_busy_timeout_is_waited_for_not_reported(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    async with connect(make_settings(ledger_busy_timeout_s=5)) as client:
        holder = sqlite3.connect(ledger_path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN EXCLUSIVE")
        release = threading.Timer(0.3, lambda: holder.execute("ROLLBACK"))
        release.start()
        try:
            result, output = await call(client, "read_docs", {"name": "backup-restore"})
        finally:
            release.join()
            holder.close()
    assert not result.is_error, output["error"]
    assert output["provenance"]["duration_ms"] >= 250  # it waited for the lock, and said nothing about it


async def test_a_ledger_whose_newest_row_was_altered_refuses_to_extend_it(
    make_settings: Callable[..., Settings], llm: FakeOpenAI, ledger_path: Path
) -> None:
    async with connect(make_settings()) as client:
        await call(client, "list_docs")
    conn = sqlite3.connect(ledger_path, isolation_level=None)
    (trigger,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'agent_actions_no_update'").fetchone()
    conn.execute("DROP TRIGGER agent_actions_no_update")
    conn.execute("UPDATE agent_actions SET decision = 'ESCALATE' WHERE seq = (SELECT max(seq) FROM agent_actions)")
    conn.execute(trigger)  # put back, as a careful intruder would: the schema is as it was
    conn.close()
    await _every_call_is_refused(_settings(make_settings, llm), llm, "does not match its hash")


async def test_a_keyed_ledger_refuses_calls_without_its_key_or_with_another(
    make_settings: Callable[..., Settings], llm: FakeOpenAI, ledger_path: Path, tmp_path: Path
) -> None:
    key, other = tmp_path / "key", tmp_path / "other-key"
    key.write_text("a" * 64)
    other.write_text("b" * 64)
    async with connect(make_settings(ledger_key_file=key)) as client:
        await call(client, "list_docs")
    await _every_call_is_refused(_settings(make_settings, llm), llm, "PLANNER_MCP_LEDGER_KEY_FILE")
    await _every_call_is_refused(_settings(make_settings, llm, ledger_key_file=other), llm, "different key")
    result, _ = await call_once(make_settings(ledger_key_file=key), "list_docs")
    assert not result.is_error


@pytest.mark.parametrize(
    ("tool", "arguments", "ended"),
    [
        # A call made of steps: the cancel is delivered after the step that waited, and recorded as such.
        ("read_logs", {}, "CANCELLED"),
        # A local read is one trip to a worker thread (intent, read, outcome): the cancel waits for it, and
        # the ledger holds how the call really ended; the client drops the answer.
        ("read_docs", {"name": "backup-restore"}, None),
    ],
)
async def test_a_cancel_while_the_intent_waits_for_the_ledger_still_records_how_the_call_ended(
    make_settings: Callable[..., Settings], ledger_path: Path, tool: str, arguments: dict[str, str], ended: str | None
) -> None:
    async with connect(make_settings()) as client:
        holder = sqlite3.connect(ledger_path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN EXCLUSIVE")  # the intent's write waits for this lock
        release = threading.Timer(0.5, lambda: holder.execute("ROLLBACK"))
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(client.call_tool, tool, arguments)
                await anyio.wait_all_tasks_blocked()  # the call is inside the gate, waiting on the ledger
                release.start()
                group.cancel_scope.cancel()
        finally:
            release.join()
            holder.close()
        with anyio.fail_after(5):
            after = await client.call_tool("list_docs", {})
    assert not after.is_error
    cancelled, _ = rows(ledger_path)
    assert (cancelled["action"], cancelled["error_type"]) == (tool, ended)
    assert verify(ledger_path).status == "ok"  # no intent without its outcome
