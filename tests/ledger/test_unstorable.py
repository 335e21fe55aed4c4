"""A value SQLite cannot take fails its own write cleanly: nothing of it is written, the write lock is released
for every process, and text that merely cannot be encoded is kept, escaped, rather than refused."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ledger import Ledger, LedgerError, verify
from ledger.records import Intent, Outcome
from tests.conftest import rows

_TAKE_WRITE_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=0.5, isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO ledger_events (timestamp, kind, detail) VALUES ('t', 'probe', 'x')")
conn.execute("ROLLBACK")
"""


_CALL: dict[str, Any] = {"request_id": "r1", "timestamp": "2026-01-01T00:00:00.000Z", "agent_id": "a",
                         "agent_version": "1", "tier": 0, "action": "analyze", "arguments": {},
                         "tools_digest": "d"}  # fmt: skip


def _intent(**changes: Any) -> Intent:
    return Intent(**{**_CALL, **changes})


def _outcome(**changes: Any) -> Outcome:
    return Outcome(**{**_CALL, "decision": "EXECUTE", "confidence": 1.0, "success": True, **changes})


def test_a_number_too_large_to_store_fails_that_write_alone_and_releases_the_lock(ledger_path: Path) -> None:
    ledger = Ledger(ledger_path, busy_timeout_s=0.5)
    try:
        intent = ledger.record_intent(_intent())
        with pytest.raises(LedgerError, match="number too large to store") as raised:
            ledger.record_outcome(_outcome(intent_id=intent.id, prompt_tokens=2**63))
        assert raised.value.reason == "value"
        other = subprocess.run(
            [sys.executable, "-c", _TAKE_WRITE_LOCK, str(ledger_path)], capture_output=True, text=True, timeout=60
        )
        assert other.returncode == 0, other.stderr
        ledger.record_outcome(_outcome(intent_id=intent.id, prompt_tokens=12))
    finally:
        ledger.close()
    assert [r["prompt_tokens"] for r in rows(ledger_path)] == [12]
    assert verify(ledger_path).status == "ok"


def test_text_with_a_lone_surrogate_is_recorded_escaped(ledger_path: Path) -> None:
    ledger = Ledger(ledger_path)
    try:
        intent = ledger.record_intent(_intent(client_request_id="id-\ud800", arguments={"name": "x\udc80"}))
        ledger.record_outcome(_outcome(intent_id=intent.id, llm_model="m\ud800"))
    finally:
        ledger.close()
    [row] = rows(ledger_path, "call_intents")
    assert row["client_request_id"] == "id-\\ud800" and "x\\udc80" in row["arguments"]
    assert rows(ledger_path)[0]["llm_model"] == "m\\ud800"
    assert verify(ledger_path).status == "ok"
