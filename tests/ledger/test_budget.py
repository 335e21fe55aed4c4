"""A token budget is held by chained rows: reservations taken in the intent's transaction, settled by outcomes."""

import sqlite3
from pathlib import Path

import pytest

from ledger import BudgetExhausted, Intent, Ledger, Outcome, Reservation, verify
from tests.conftest import rows

AGENT = "llm-planner-001"


def _intent(request_id: str) -> Intent:
    return Intent(
        request_id=request_id, timestamp="2026-12-05T10:00:00.000Z", agent_id=AGENT, agent_version="0.1.0", tier=0,
        action="analyze", arguments={"description": "why?"}, tools_digest="sha256:abc",
    )  # fmt: skip


def _outcome(request_id: str, intent_id: int, tokens: tuple[int, int] | None, day: str) -> Outcome:
    prompt, completion = tokens if tokens is not None else (None, None)
    return Outcome(
        request_id=request_id, timestamp=f"{day}T23:59:59.999Z", agent_id=AGENT, agent_version="0.1.0", tier=0,
        action="analyze", arguments={"description": "why?"}, tools_digest="sha256:abc", decision="EXECUTE",
        confidence=0.9, success=tokens is not None, intent_id=intent_id, prompt_tokens=prompt,
        completion_tokens=completion,
    )  # fmt: skip


@pytest.fixture
def ledger(ledger_path: Path) -> Ledger:
    return Ledger(ledger_path)


def _today(ledger: Ledger) -> str:
    return str(rows(ledger.path, "token_reservations")[-1]["day"])


def test_a_reservation_counts_until_its_outcome_and_then_the_outcome_counts(ledger: Ledger) -> None:
    intent = ledger.record_intent(_intent("a"), Reservation(tokens=2000, budget=10_000))
    day = _today(ledger)
    assert ledger.tokens_committed(AGENT, day) == 2000
    ledger.reserve_tokens("a", AGENT, Reservation(tokens=300, budget=10_000))
    assert ledger.tokens_committed(AGENT, day) == 2300
    ledger.record_outcome(_outcome("a", intent.id, (120, 30), day))
    assert ledger.tokens_committed(AGENT, day) == 150
    ledger.close()
    assert [r["stage"] for r in rows(ledger.path, "token_reservations")] == ["intent", "request"]
    assert verify(ledger.path).status == "ok"


def test_a_call_that_was_sent_but_reported_no_usage_keeps_its_whole_reservation(ledger: Ledger) -> None:
    sent = ledger.record_intent(_intent("sent"), Reservation(tokens=2000, budget=10_000))
    ledger.reserve_tokens("sent", AGENT, Reservation(tokens=500, budget=10_000))
    unsent = ledger.record_intent(_intent("unsent"), Reservation(tokens=2000, budget=10_000))
    day = _today(ledger)
    ledger.record_outcome(_outcome("sent", sent.id, None, day))  # a timeout: what it cost cannot be known
    ledger.record_outcome(_outcome("unsent", unsent.id, None, day))  # failed before its request: cost nothing
    assert ledger.tokens_committed(AGENT, day) == 2500


def test_a_call_is_refused_once_the_others_have_spent_or_reserved_the_budget_and_nothing_is_written(
    ledger: Ledger, ledger_path: Path
) -> None:
    ledger.record_intent(_intent("first"), Reservation(tokens=2000, budget=40))  # the first may overshoot alone
    chained = len(rows(ledger_path, "call_intents")), len(rows(ledger_path, "token_reservations"))
    with pytest.raises(BudgetExhausted) as refused:
        ledger.record_intent(_intent("second"), Reservation(tokens=2000, budget=40))
    assert (refused.value.committed, refused.value.budget) == (2000, 40)
    assert (len(rows(ledger_path, "call_intents")), len(rows(ledger_path, "token_reservations"))) == chained
    # The refusal rolled its transaction back and kept the connection: the write lock is free for others.
    other = sqlite3.connect(ledger_path, timeout=0.1, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    other.close()
    ledger.record_intent(_intent("a read"))  # and this process writes on
    # Its own reservation does not count against a call's later one: the first call may still send its prompt.
    ledger.reserve_tokens("first", AGENT, Reservation(tokens=900, budget=40))


def test_a_later_reservation_is_refused_when_other_calls_took_the_budget_meanwhile(ledger: Ledger) -> None:
    ledger.record_intent(_intent("a"), Reservation(tokens=2000, budget=5000))
    ledger.record_intent(_intent("b"), Reservation(tokens=2000, budget=5000))  # 2000 of others: under the budget
    ledger.reserve_tokens("b", AGENT, Reservation(tokens=3500, budget=5000))  # still 2000 of others
    with pytest.raises(BudgetExhausted) as refused:
        ledger.reserve_tokens("a", AGENT, Reservation(tokens=3000, budget=5000))  # b holds 5500 now
    assert refused.value.committed == 5500


def test_the_budget_holds_though_every_table_outside_the_chain_is_emptied(ledger: Ledger, ledger_path: Path) -> None:
    intent = ledger.record_intent(_intent("a"), Reservation(tokens=100, budget=1000))
    day = _today(ledger)
    ledger.record_outcome(_outcome("a", intent.id, (900, 200), day))
    ledger.close()
    conn = sqlite3.connect(ledger_path, isolation_level=None)
    conn.execute("DELETE FROM agent_metrics")
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'agent_token_usage'").fetchone() == (0,)
    conn.close()
    with pytest.raises(BudgetExhausted):
        Ledger(ledger_path).record_intent(_intent("b"), Reservation(tokens=100, budget=1000))
