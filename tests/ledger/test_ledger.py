import json
import sqlite3
from pathlib import Path

import pytest

from ledger import REDACTED, Intent, Ledger, LedgerError, Outcome, Scrubber
from ledger.migrations import MIGRATIONS
from tests.conftest import API_KEY, rows


def _intent(request_id: str = "r1", **overrides: object) -> Intent:
    fields: dict[str, object] = {
        "request_id": request_id,
        "timestamp": "2026-11-24T00:00:00.000Z",
        "agent_id": "llm-planner-001",
        "agent_version": "0.1.0",
        "tier": 0,
        "action": "read_docs",
        "arguments": {"name": "backup-restore"},
        "tools_digest": "sha256:abc",
    }
    return Intent(**{**fields, **overrides})  # type: ignore[arg-type]


def _outcome(request_id: str = "r1", success: bool = True, **overrides: object) -> Outcome:
    fields: dict[str, object] = {
        "request_id": request_id,
        "timestamp": "2026-11-24T00:00:00.100Z",
        "agent_id": "llm-planner-001",
        "agent_version": "0.1.0",
        "tier": 0,
        "action": "read_docs",
        "decision": "EXECUTE" if success else "ERROR",
        "confidence": 1.0 if success else 0.0,
        "success": success,
        "arguments": {"name": "backup-restore"},
        "tools_digest": "sha256:abc",
    }
    return Outcome(**{**fields, **overrides})  # type: ignore[arg-type]


def test_a_new_ledger_is_wal_with_every_migration_recorded(ledger_path: Path) -> None:
    ledger = Ledger(ledger_path)
    ledger.record_intent(_intent())
    ledger.close()
    conn = sqlite3.connect(ledger_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [r[0] for r in conn.execute("SELECT name FROM _migrations")] == [m.__name__ for m in MIGRATIONS]
    conn.close()
    Ledger(ledger_path).record_intent(_intent("r2"))  # reopening migrates nothing twice
    assert len(rows(ledger_path, "_migrations", order="name")) == len(MIGRATIONS)


def test_a_ledger_written_by_an_older_version_is_upgraded_in_place(ledger_path: Path) -> None:
    from ledger.migrations import m001_seed_tables

    ledger_path.parent.mkdir(parents=True)
    old = sqlite3.connect(ledger_path, isolation_level=None)
    old.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    m001_seed_tables(old)
    old.execute("INSERT INTO _migrations VALUES ('m001_seed_tables', '2026-11-01T00:00:00Z')")
    old.execute(
        "INSERT INTO agent_actions (timestamp, agent_id, agent_version, tier, action, decision, confidence, success)"
        " VALUES ('2026-11-01T00:00:00Z', 'llm-planner-001', '0.1.0', 0, 'read_docs', 'EXECUTE', 1.0, 1)"
    )
    old.close()
    ledger = Ledger(ledger_path)
    ledger.record_outcome(_outcome(notes="vault-tls-unverified"))
    ledger.close()
    assert [r["notes"] for r in rows(ledger_path)] == ["", "vault-tls-unverified"]
    assert [r["name"] for r in rows(ledger_path, "_migrations", order="name")] == [m.__name__ for m in MIGRATIONS]


def test_an_upgraded_ledger_counts_the_tokens_its_old_rows_already_spent(ledger_path: Path) -> None:
    from ledger.migrations import m001_seed_tables, m002_call_notes

    ledger_path.parent.mkdir(parents=True)
    old = sqlite3.connect(ledger_path, isolation_level=None)
    old.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for migration in (m001_seed_tables, m002_call_notes):
        migration(old)
        old.execute("INSERT INTO _migrations VALUES (?, '2026-11-01T00:00:00Z')", (migration.__name__,))
    for stamp, agent, prompt, completion in [
        ("2026-11-24T08:00:00.000Z", "llm-planner-001", 100, 20),
        ("2026-11-24T09:00:00.000Z", "llm-planner-001", 50, None),
        ("2026-11-23T23:59:59.999Z", "llm-planner-001", 1000, 1000),
        ("2026-11-24T09:00:00.000Z", "other-agent", 7, 7),
    ]:
        old.execute(
            "INSERT INTO agent_actions (timestamp, agent_id, agent_version, tier, action, decision, confidence,"
            " success, prompt_tokens, completion_tokens) VALUES (?, ?, '0.1.0', 0, 'analyze', 'EXECUTE', 1, 1, ?, ?)",
            (stamp, agent, prompt, completion),
        )
    old.close()
    ledger = Ledger(ledger_path)
    assert ledger.tokens_committed("llm-planner-001", "2026-11-24") == 170
    assert ledger.tokens_committed("llm-planner-001", "2026-11-23") == 2000
    assert ledger.tokens_committed("other-agent", "2026-11-24") == 14
    assert ledger.tokens_committed("nobody", "2026-11-24") == 0


def test_each_outcome_with_usage_adds_to_its_agents_day(ledger_path: Path) -> None:
    ledger = Ledger(ledger_path)
    ledger.record_outcome(_outcome("r1", action="analyze", prompt_tokens=30, completion_tokens=12))
    ledger.record_outcome(_outcome("r2", action="analyze", prompt_tokens=8, completion_tokens=0))
    ledger.record_outcome(_outcome("r3"))  # a read: no LLM, no tokens
    ledger.record_outcome(_outcome("r4", timestamp="2026-11-25T00:00:00.000Z", prompt_tokens=5, completion_tokens=5))
    assert ledger.tokens_committed("llm-planner-001", "2026-11-24") == 50
    assert ledger.tokens_committed("llm-planner-001", "2026-11-25") == 10
    [stats] = ledger.stats()
    assert (stats["prompt_tokens"], stats["completion_tokens"], stats["llm_calls"]) == (43, 17, 3)


def test_a_secret_learnt_after_the_ledger_opened_is_scrubbed_too(ledger_path: Path) -> None:
    scrubber = Scrubber()
    ledger = Ledger(ledger_path, scrubber=scrubber)
    scrubber.add("learnt-at-run-time-credential")
    ledger.record_intent(_intent(arguments={"q": "use learnt-at-run-time-credential"}))
    ledger.close()
    raw = b"".join(p.read_bytes() for p in ledger_path.parent.iterdir())
    assert b"learnt-at-run-time-credential" not in raw
    assert REDACTED in rows(ledger_path, "call_intents")[0]["arguments"]


def test_a_secret_learnt_during_a_call_is_scrubbed_from_its_outcome_though_its_intent_had_it(
    ledger_path: Path,
) -> None:
    # The arguments are encoded once for both records of a call, but not past a change in what is secret.
    scrubber = Scrubber()
    ledger = Ledger(ledger_path, scrubber=scrubber)
    arguments = {"q": "a key like learnt-during-the-call-credential"}
    ledger.record_intent(_intent(arguments=arguments))
    scrubber.add("learnt-during-the-call-credential")
    ledger.record_outcome(_outcome(arguments=arguments))
    ledger.record_intent(_intent("r2", arguments={"q": "something else"}))
    ledger.close()
    [intent, later] = rows(ledger_path, "call_intents")
    [outcome] = rows(ledger_path, "agent_actions")
    assert "learnt-during-the-call-credential" in intent["arguments"]
    assert json.loads(outcome["arguments"]) == {"q": f"a key like {REDACTED}"}
    assert json.loads(later["arguments"]) == {"q": "something else"}


def test_the_ledger_connection_runs_with_synchronous_full(ledger_path: Path) -> None:
    ledger = Ledger(ledger_path)
    assert ledger._with_connection(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == 2


def test_an_outcome_is_recorded_with_the_seeds_columns_and_metrics(ledger_path: Path) -> None:
    ledger = Ledger(ledger_path)
    intent_id = ledger.record_intent(_intent()).id
    ledger.record_outcome(_outcome(intent_id=intent_id, duration_ms=1.5, output_digest="sha256:x"))
    ledger.record_outcome(_outcome("r2", success=False, refused=True, error_type="FORBIDDEN_ACTION", action="ssh"))
    ledger.record_outcome(_outcome("r3", success=False, error_type="NOT_FOUND", error_message="no such doc"))
    ledger.record_outcome(_outcome("r4"))
    [first, second, third, _] = rows(ledger_path)
    assert first["intent_id"] == intent_id and first["success"] == 1 and first["decision"] == "EXECUTE"
    assert (second["action"], second["refused"], second["error_type"]) == ("ssh", 1, "FORBIDDEN_ACTION")
    assert (third["refused"], third["error_message"]) == (0, "no such doc")
    [metrics] = rows(ledger_path, "agent_metrics", order="agent_id")
    assert (metrics["total_runs"], metrics["compliant_runs"], metrics["consecutive_compliant"]) == (4, 2, 1)
    assert (metrics["refused_runs"], metrics["error_runs"]) == (1, 1)


def test_the_seeds_own_statements_still_run_against_the_ledger(ledger_path: Path) -> None:
    Ledger(ledger_path).record_intent(_intent())
    conn = sqlite3.connect(ledger_path)
    conn.execute(
        "INSERT INTO agent_actions (timestamp, agent_id, agent_version, tier, action, decision, confidence,"
        " success, error_type, error_message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ("2026-01-01T00:00:00Z", "llm-planner-001", "0.1.0", 0, "generate_plan", "EXECUTE", 0.9, 1, None, None),
    )
    conn.execute(
        "INSERT INTO agent_metrics (agent_id, current_tier, total_runs, last_active_at, compliant_runs,"
        " consecutive_compliant) VALUES (?, ?, 1, ?, ?, ?) ON CONFLICT(agent_id) DO UPDATE SET"
        " total_runs = total_runs + 1, last_active_at = ?, updated_at = ?",
        ("llm-planner-001", 0, "t", 1, 1, "t", "t"),
    )
    conn.commit()
    conn.close()
    assert rows(ledger_path)[0]["action"] == "generate_plan"


def test_secrets_never_reach_the_file(ledger_path: Path) -> None:
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
    ledger = Ledger(ledger_path, known_secrets=[API_KEY, "opaque-custom-credential-42"])
    arguments = {"name": "x", "api_key": "short", "note": f"key {API_KEY} and opaque-custom-credential-42", "pem": pem}
    ledger.record_intent(_intent(arguments=arguments))
    ledger.record_outcome(_outcome(arguments=arguments, error_message=f"failed with Bearer {API_KEY}"))
    ledger.close()
    raw = b"".join(p.read_bytes() for p in ledger_path.parent.iterdir())
    for secret in (API_KEY, "opaque-custom-credential-42", "MIIEowIBAAKCAQEA", b"short"):
        assert (secret if isinstance(secret, bytes) else secret.encode()) not in raw
    assert REDACTED.encode() in raw


def test_the_scrubber_keeps_ordinary_text() -> None:
    scrub = Scrubber(["sk-known-secret-value"])
    assert scrub.value({"name": "backup-restore", "tokens": None, "n": 3}) == {
        "name": "backup-restore",
        "tokens": None,
        "n": 3,
    }
    assert scrub.text("ask for sk-known-secret-value") == f"ask for {REDACTED}"


def test_an_unwritable_location_raises_a_ledger_error_that_names_it(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x", encoding="utf-8")
    ledger = Ledger(blocker / "ledger.db")
    with pytest.raises(LedgerError, match="not-a-directory"):
        ledger.record_intent(_intent())


def test_the_ledger_recovers_once_its_location_is_fixed(tmp_path: Path) -> None:
    blocker = tmp_path / "ledger"
    blocker.write_text("x", encoding="utf-8")
    ledger = Ledger(blocker / "ledger.db")
    with pytest.raises(LedgerError):
        ledger.record_intent(_intent())
    blocker.unlink()
    assert ledger.record_intent(_intent()).id == 1


def test_a_secret_sent_as_an_arguments_name_is_scrubbed_too() -> None:
    assert Scrubber().value({API_KEY: {"nested sk-abcdefghijklmnop0123": 1}}) == {REDACTED: {f"nested {REDACTED}": 1}}


def test_a_new_ledger_and_its_folder_are_private_to_the_user(tmp_path: Path) -> None:
    import os
    import stat

    previous = os.umask(0o022)  # the usual umask, under which SQLite alone would create the file 0644
    try:
        path = tmp_path / "new" / "folder" / "ledger.db"
        ledger = Ledger(path)
        ledger.record_intent(_intent())
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
        ledger.close()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert modes == {"ledger.db": 0o600, "ledger.db-wal": 0o600, "ledger.db-shm": 0o600, "ledger.db.lock": 0o600}
