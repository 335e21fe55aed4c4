"""The chain as the ledger writes it: contiguous, append-only, upgraded in place, keyed on request."""

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger import Intent, Ledger, LedgerError, Outcome, verify
from ledger.migrations import MIGRATIONS, m001_seed_tables, m002_call_notes, m003_daily_token_usage
from ledger.records import utc_now, utc_timestamp
from ledger.verify import INCOMPLETE
from server import Settings
from server.config.settings import SettingsError
from tests.conftest import rows

KEY = b"k" * 32


def _intent(request_id: str) -> Intent:
    return Intent(
        request_id=request_id, timestamp="2026-11-24T00:00:00.000Z", agent_id="llm-planner-001",
        agent_version="0.1.0", tier=0, action="read_docs", arguments={"name": "backup-restore"}, tools_digest="d",
    )  # fmt: skip


def _outcome(request_id: str, intent_id: int | None) -> Outcome:
    return Outcome(
        request_id=request_id, timestamp="2026-11-24T00:00:00.100Z", agent_id="llm-planner-001",
        agent_version="0.1.0", tier=0, action="read_docs", decision="EXECUTE", confidence=1, success=True,
        arguments={"name": "backup-restore"}, tools_digest="d", intent_id=intent_id, duration_ms=2,
    )  # fmt: skip


def _calls(ledger: Ledger, n: int, prefix: str = "r") -> None:
    for i in range(n):
        intent = ledger.record_intent(_intent(f"{prefix}{i}"))
        ledger.record_outcome(_outcome(f"{prefix}{i}", intent.id))


def _all_seqs(path: Path) -> list[int]:
    return sorted(r["seq"] for t in ("call_intents", "agent_actions", "ledger_events") for r in rows(path, t))


def test_rows_of_every_kind_share_one_contiguous_chain(ledger_path: Path) -> None:
    ledger = Ledger(ledger_path)
    _calls(ledger, 5)
    ledger.record_event("note", "an operator's note")
    ledger.close()
    assert _all_seqs(ledger_path) == list(range(1, 13))  # the schema event, 5 intents, 5 outcomes, the note
    [first, *_] = rows(ledger_path, "ledger_events")
    assert (first["seq"], first["prev_hash"], first["kind"]) == (1, "genesis", "schema")
    assert verify(ledger_path).status == "ok"


def test_an_intent_without_its_outcome_is_incomplete_not_tampered(ledger_path: Path) -> None:
    ledger = Ledger(ledger_path)
    _calls(ledger, 2)
    ledger.record_intent(_intent("cut-short"))
    ledger.close()
    report = verify(ledger_path)
    assert report.status == "incomplete"
    assert [f.kind for f in report.findings] == ["incomplete"] and "cut-short" in report.findings[0].detail


def test_an_upgraded_ledger_loses_the_outcomes_by_intent_index_and_verify_still_finds_incomplete_calls(
    ledger_path: Path,
) -> None:
    ledger_path.parent.mkdir(parents=True, exist_ok=True)
    old = sqlite3.connect(ledger_path, isolation_level=None)
    old.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for migration in MIGRATIONS[:4]:  # the schema as m004 left it, with the index every outcome had to update
        migration(old)
        old.execute("INSERT INTO _migrations VALUES (?, 'then')", (migration.__name__,))
    old.close()
    ledger = Ledger(ledger_path)
    _calls(ledger, 3)
    ledger.record_intent(_intent("cut-short"))
    ledger.close()
    conn = sqlite3.connect(ledger_path)
    indexes = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "agent_actions_by_intent" not in indexes and "agent_actions_by_agent" in indexes
    # An intent's outcome is looked up through the unique index on request_id: no scan of the outcomes per intent.
    plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {INCOMPLETE}"))
    conn.close()
    assert "SEARCH a USING INDEX sqlite_autoindex_agent_actions_1 (request_id=?)" in plan, plan
    report = verify(ledger_path)
    assert [(f.kind, "cut-short" in f.detail) for f in report.findings] == [("incomplete", True)]


@pytest.mark.parametrize("statement", ["UPDATE {t} SET timestamp = 'x'", "DELETE FROM {t}"])
@pytest.mark.parametrize("table", ["call_intents", "agent_actions", "ledger_events"])
def test_the_recorded_rows_refuse_update_and_delete(ledger_path: Path, table: str, statement: str) -> None:
    ledger = Ledger(ledger_path)
    _calls(ledger, 1)
    ledger.close()
    conn = sqlite3.connect(ledger_path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute(statement.format(t=table))
    conn.close()


def test_a_ledger_from_before_the_chain_is_chained_in_place_in_the_order_it_was_written(ledger_path: Path) -> None:
    ledger_path.parent.mkdir(parents=True)
    old = sqlite3.connect(ledger_path, isolation_level=None)
    old.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for migration in (m001_seed_tables, m002_call_notes, m003_daily_token_usage):
        migration(old)
        old.execute("INSERT INTO _migrations VALUES (?, '2026-11-01T00:00:00Z')", (migration.__name__,))
    old.execute(
        "INSERT INTO call_intents (timestamp, request_id, agent_id, agent_version, tier, action, arguments,"
        " tools_digest) VALUES ('2026-11-02T00:00:00.000Z', 'old-1', 'a', '0.1.0', 0, 'read_docs', '{}', 'd')"
    )
    old.execute(
        "INSERT INTO agent_actions (timestamp, agent_id, agent_version, tier, action, decision, confidence, success,"
        " request_id, intent_id) VALUES ('2026-11-02T00:00:00.005Z', 'a', '0.1.0', 0, 'read_docs', 'EXECUTE', 1, 1,"
        " 'old-1', 1)"
    )
    old.execute(  # the seed's own statement: no request id, no intent
        "INSERT INTO agent_actions (timestamp, agent_id, agent_version, tier, action, decision, confidence, success)"
        " VALUES ('2026-11-01T12:00:00Z', 'a', '0.1.0', 0, 'generate_plan', 'ESCALATE', 0.5, 1)"
    )
    old.execute(  # and the counters kept with them, as the versions before the chain kept them
        "INSERT INTO agent_metrics (agent_id, current_tier, total_runs, compliant_runs, consecutive_compliant,"
        " last_active_at) VALUES ('a', 0, 2, 2, 2, '2026-11-01T12:00:00Z')"
    )
    old.close()
    ledger = Ledger(ledger_path)
    _calls(ledger, 1)
    ledger.close()
    old_outcome, seed_row, _ = rows(ledger_path)  # by id
    [old_intent, _] = rows(ledger_path, "call_intents")
    assert (seed_row["seq"], old_intent["seq"], old_outcome["seq"]) == (1, 2, 3)  # by time, across tables
    kinds = [(e["kind"], e["detail"]) for e in rows(ledger_path, "ledger_events")]
    assert kinds[0][0] == "chain-started" and "3 rows" in kinds[0][1]
    upgraded = "m004_hash_chain, m005_outcomes_found_by_request, m006_token_reservations"
    assert kinds[1] == ("schema", f"schema upgraded: {upgraded}")
    assert [r["name"] for r in rows(ledger_path, "_migrations", order="name")] == [m.__name__ for m in MIGRATIONS]
    assert verify(ledger_path).status == "ok"


def test_the_durability_mode_is_full_unless_configured_and_a_weaker_one_is_recorded(ledger_path: Path) -> None:
    full = Ledger(ledger_path)
    assert full._with_connection(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == 2
    full.close()
    assert [e["kind"] for e in rows(ledger_path, "ledger_events")] == ["schema"]
    normal = Ledger(ledger_path, synchronous="normal")
    assert normal._with_connection(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == 1
    normal.close()
    [_, durability] = rows(ledger_path, "ledger_events")
    assert durability["kind"] == "durability" and "synchronous=NORMAL" in durability["detail"]
    assert verify(ledger_path).status == "ok"


def test_the_durability_setting_accepts_full_or_normal_only() -> None:
    assert Settings.from_env({"PLANNER_MCP_LEDGER_SYNC": "NORMAL"}).ledger_sync == "normal"
    with pytest.raises(SettingsError, match="PLANNER_MCP_LEDGER_SYNC"):
        Settings.from_env({"PLANNER_MCP_LEDGER_SYNC": "off"})
    assert Settings.from_env({"PLANNER_MCP_LEDGER_MAX_MB": "0.5"}).ledger_max_bytes == 512 * 1024


def test_a_key_given_to_an_unkeyed_chain_keys_it_from_the_next_row_on(ledger_path: Path) -> None:
    plain = Ledger(ledger_path)
    _calls(plain, 1)
    plain.close()
    keyed = Ledger(ledger_path, key=KEY)
    _calls(keyed, 1, prefix="keyed-")
    keyed.close()
    events = rows(ledger_path, "ledger_events")
    assert events[-1]["kind"] == "chain-keyed" and f"seq {events[-1]['seq']}" in events[-1]["detail"]
    assert [r["row_hash"].split(":")[1] for r in rows(ledger_path)] == ["sha256", "hmac-sha256"]
    report = verify(ledger_path, key=KEY)
    assert report.status == "ok" and report.keyed_rows == 3


def test_a_failed_write_is_not_retried_and_names_its_cause(ledger_path: Path) -> None:
    ledger = Ledger(ledger_path, max_bytes=128 * 1024)
    with pytest.raises(LedgerError) as full:  # fill until SQLite reports the disk full
        _calls(ledger, 10_000)
    assert full.value.reason == "full" and "PLANNER_MCP_LEDGER_MAX_MB" in str(full.value)
    before = _all_seqs(ledger_path)
    assert before == list(range(1, len(before) + 1))  # the failed row left no gap and no half
    assert verify(ledger_path).status in ("ok", "incomplete")


def test_the_ledger_timestamp_spells_the_moment_as_utc_timestamp_does() -> None:
    for _ in range(20_000):  # across several seconds' and milliseconds' turns
        before = utc_timestamp(datetime.now(UTC))
        now = utc_now()
        after = utc_timestamp(datetime.now(UTC))
        assert before <= now <= after and len(now) == len(before) == 24 and now.endswith("Z")
