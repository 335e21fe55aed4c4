"""Group commit: calls writing at once share one transaction and one commit, each returns only once its own row is
committed, a write refused on its own fails alone, and a commit that fails fails every write it held."""

import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from ledger import BudgetExhausted, Intent, Ledger, LedgerError, Outcome, Position, Reservation, verify
from ledger.sqlite_storage import read_only
from tests.conftest import rows
from tests.ledger.together import opened, together
from tests.small_disk import full_disk, small_tmpfs

_WRITERS = 16
_CALLS_EACH = 10


def _call(request_id: str) -> dict[str, Any]:
    return {"request_id": request_id, "timestamp": "2026-12-06T10:00:00.000Z", "agent_id": "llm-planner-001",
            "agent_version": "0.1.0", "tier": 0, "action": "analyze", "arguments": {"n": request_id},
            "tools_digest": "d"}  # fmt: skip


def _intent(request_id: str) -> Intent:
    return Intent(**_call(request_id))


def _outcome(request_id: str, intent_id: int | None = None, **changes: Any) -> Outcome:
    fields = {"decision": "EXECUTE", "confidence": 1.0, "success": True, "intent_id": intent_id, **changes}
    return Outcome(**_call(request_id), **fields)


@pytest.fixture
def ledger(ledger_path: Path) -> Iterator[Ledger]:
    with opened(ledger_path) as ledger:
        yield ledger


def _traced(ledger: Ledger) -> list[str]:
    """Every statement the ledger's connection runs from now on, as SQLite starts it."""
    statements: list[str] = []
    ledger._with_connection(lambda conn: cast(sqlite3.Connection, conn).set_trace_callback(statements.append))
    return statements


def _seqs(path: Path) -> list[int]:
    return sorted(r["seq"] for table in ("call_intents", "agent_actions") for r in rows(path, table))


@pytest.mark.anyio
async def test_writes_made_at_once_share_one_commit_synced_when_any_of_them_asks(ledger: Ledger) -> None:
    statements = _traced(ledger)
    intents = await together(ledger, [functools.partial(ledger.record_intent, _intent(f"r{i}")) for i in range(8)])
    assert all(isinstance(p, Position) for p in intents), intents
    assert statements.count("COMMIT") == 1
    assert "PRAGMA synchronous = NORMAL" in statements  # intents alone do not wait for the disk

    statements.clear()
    writes: list[Callable[[], Any]] = [functools.partial(ledger.record_intent, _intent(f"s{i}")) for i in range(3)]
    writes.append(lambda: ledger.record_outcome(_outcome("r0", intents[0].id)))
    await together(ledger, writes)
    assert statements.count("COMMIT") == 1
    assert "PRAGMA synchronous = NORMAL" not in statements  # an outcome among them: the commit syncs them all

    assert sorted(p.seq for p in intents) == list(range(intents[0].seq, intents[0].seq + 8))
    assert len(rows(ledger.path, "call_intents")) == 11
    assert verify(ledger.path).status in ("ok", "incomplete")


def test_many_threads_writing_at_once_share_commits_and_each_returns_once_its_row_is_committed(
    ledger: Ledger,
) -> None:
    statements = _traced(ledger)
    unseen: list[str] = []
    start = threading.Barrier(_WRITERS)

    def committed(table: str, position: Position) -> bool:
        # Another connection: it sees only committed rows.
        with read_only(ledger.path) as other:
            found = other.execute(f"SELECT seq FROM {table} WHERE id = ?", (position.id,)).fetchone()
        return found is not None and found[0] == position.seq

    def calls(n: int) -> None:
        start.wait(30)
        for i in range(_CALLS_EACH):
            intent = ledger.record_intent(_intent(f"w{n}-{i}"))
            if not committed("call_intents", intent):
                unseen.append(f"intent w{n}-{i}")
            outcome = ledger.record_outcome(_outcome(f"w{n}-{i}", intent.id))
            if not committed("agent_actions", outcome):
                unseen.append(f"outcome w{n}-{i}")

    threads = [threading.Thread(target=calls, args=(n,)) for n in range(_WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
        assert not thread.is_alive(), "a writer did not return"

    writes = 2 * _WRITERS * _CALLS_EACH
    assert not unseen, unseen
    assert len(rows(ledger.path)) == _WRITERS * _CALLS_EACH
    assert _seqs(ledger.path) == list(range(_seqs(ledger.path)[0], _seqs(ledger.path)[0] + writes))
    assert statements.count("COMMIT") < writes
    assert verify(ledger.path).status == "ok"


@pytest.mark.anyio
async def test_a_value_the_ledger_cannot_store_fails_its_own_write_and_not_the_others_sharing_its_commit(
    ledger: Ledger,
) -> None:
    statements = _traced(ledger)
    done = await together(ledger, [
        lambda: ledger.record_intent(_intent("before")),
        lambda: ledger.record_outcome(_outcome("too-large", prompt_tokens=2**63)),
        lambda: ledger.record_intent(_intent("after")),
    ])  # fmt: skip
    assert isinstance(done[1], LedgerError) and done[1].reason == "value", done
    assert isinstance(done[0], Position) and isinstance(done[2], Position), done
    assert done[2].seq == done[0].seq + 1  # the refused row took no place in the chain
    assert statements.count("COMMIT") == 1
    assert [r["request_id"] for r in rows(ledger.path, "call_intents")] == ["before", "after"]
    assert rows(ledger.path) == []
    assert verify(ledger.path).status in ("ok", "incomplete")


@pytest.mark.anyio
async def test_a_budget_refusal_undoes_its_own_intent_and_not_the_others_sharing_its_commit(ledger: Ledger) -> None:
    spent = ledger.record_intent(_intent("spent"), Reservation(tokens=1000, budget=1000))
    statements = _traced(ledger)
    done = await together(ledger, [
        lambda: ledger.record_intent(_intent("before")),
        lambda: ledger.record_intent(_intent("refused"), Reservation(tokens=10, budget=1000)),
        lambda: ledger.record_outcome(_outcome("spent", spent.id, prompt_tokens=600, completion_tokens=400)),
    ])  # fmt: skip
    assert isinstance(done[1], BudgetExhausted), done
    assert isinstance(done[0], Position) and isinstance(done[2], Position), done
    assert done[2].seq == done[0].seq + 1
    assert statements.count("COMMIT") == 1
    assert [r["request_id"] for r in rows(ledger.path, "call_intents")] == ["spent", "before"]
    assert [r["request_id"] for r in rows(ledger.path, "token_reservations")] == ["spent"]
    assert verify(ledger.path).status in ("ok", "incomplete")


@pytest.mark.anyio
async def test_a_commit_that_fails_fails_every_write_it_held_and_the_next_write_recovers() -> None:
    with small_tmpfs(8) as disk:
        path = disk / "ledger.db"
        with opened(path) as ledger:
            before = ledger.record_intent(_intent("before"))
            statements = _traced(ledger)
            with full_disk(disk):
                lost = [functools.partial(ledger.record_intent, _intent(f"lost{i}")) for i in range(4)]
                done = await together(ledger, lost)
            assert all(isinstance(e, LedgerError) and e.reason == "full" for e in done), done
            assert len({id(e) for e in done}) == 4  # each writer raises an exception of its own
            assert statements.count("COMMIT") == 1  # the rows were written; their commit found no room
            after = ledger.record_intent(_intent("after"))
        assert after.seq == before.seq + 1  # none of the failed writes claimed a place
        assert [r["request_id"] for r in rows(path, "call_intents")] == ["before", "after"]
        assert verify(path).status in ("ok", "incomplete")


def test_intents_recorded_together_share_one_commit_that_does_not_wait_for_the_disk(ledger: Ledger) -> None:
    statements = _traced(ledger)
    done = ledger.record_intents([_intent(f"r{i}") for i in range(5)])
    assert all(isinstance(p, Position) for p in done), done
    assert [p.seq for p in done] == list(range(done[0].seq, done[0].seq + 5))  # type: ignore[union-attr]
    assert statements.count("COMMIT") == 1
    assert "PRAGMA synchronous = NORMAL" in statements
    assert [r["request_id"] for r in rows(ledger.path, "call_intents")] == [f"r{i}" for i in range(5)]


def test_outcomes_recorded_together_share_one_synced_commit_and_one_that_cannot_be_stored_fails_alone(
    ledger: Ledger,
) -> None:
    intents = ledger.record_intents([_intent(f"r{i}") for i in range(3)])
    statements = _traced(ledger)
    done = ledger.record_outcomes([
        _outcome("r0", intents[0].id),  # type: ignore[union-attr]
        _outcome("r1", intents[1].id, prompt_tokens=2**63),  # type: ignore[union-attr]
        _outcome("r2", intents[2].id),  # type: ignore[union-attr]
    ])  # fmt: skip
    assert isinstance(done[1], LedgerError) and done[1].reason == "value", done
    assert isinstance(done[0], Position) and isinstance(done[2], Position), done
    assert done[2].seq == done[0].seq + 1  # the refused row took no place in the chain
    assert statements.count("COMMIT") == 1
    assert "PRAGMA synchronous = NORMAL" not in statements  # outcomes wait for the disk
    assert [r["request_id"] for r in rows(ledger.path)] == ["r0", "r2"]
    assert verify(ledger.path).status in ("ok", "incomplete")


def test_a_record_whose_row_cannot_be_made_is_kept_out_alone(ledger: Ledger) -> None:
    unmade = _outcome("bad", confidence="not a number")
    done = ledger.record_outcomes([_outcome("good"), unmade, _outcome("also-good")])
    assert isinstance(done[1], ValueError), done
    assert isinstance(done[0], Position) and isinstance(done[2], Position), done
    assert [r["request_id"] for r in rows(ledger.path)] == ["good", "also-good"]


def test_a_commit_of_records_together_that_fails_fails_each_of_them_with_an_error_of_its_own() -> None:
    with small_tmpfs(8) as disk:
        path = disk / "ledger.db"
        with opened(path) as ledger:
            before = ledger.record_intent(_intent("before"))
            with full_disk(disk):
                done = ledger.record_intents([_intent(f"lost{i}") for i in range(4)])
            assert all(isinstance(e, LedgerError) and e.reason == "full" for e in done), done
            assert len({id(e) for e in done}) == 4
            after = ledger.record_intents([_intent("after")])[0]
        assert isinstance(after, Position) and after.seq == before.seq + 1
        assert [r["request_id"] for r in rows(path, "call_intents")] == ["before", "after"]
        assert verify(path).status in ("ok", "incomplete")
