"""Ledgers of a given size, written the ledger's own way, for measuring calls against 1k, 100k and 1M rows.

Rows are appended with the ledger's `append` (the same chain, hashes and indexes as the server's), as
intent and outcome pairs shaped like real calls, but many to a transaction: a million single commits
would take longer than the whole benchmark. The agents' metrics are set to match, so the result verifies.
A `varied` ledger spreads its calls over a year, eight agents, every decision, errors and LLM tokens, as the
audit report counts them; the default one is one agent's reads on one day.
Filled files are kept in a cache keyed by the row count, the shape and the ledger's source, and copied for each run.
"""

import hashlib
import json
import shutil
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ledger
from ledger import Ledger, utc_timestamp
from ledger.append import append
from ledger.chain import Hasher
from ledger.connection import SqliteConn
from ledger.metrics import METRIC_COLUMNS, derived

__all__ = ["AGENT", "cached_ledger", "fill"]

AGENT = "bench-filler"
_BATCH = 20_000
_START = datetime(2026, 1, 1, tzinfo=UTC)
_DECISIONS = ("EXECUTE",) * 6 + ("ESCALATE", "INSUFFICIENT_INFORMATION", "SKIP", "ERROR")


def fill(path: Path, rows: int, *, varied: bool = False) -> None:
    """Create a ledger at `path` holding `rows` chained rows besides the schema's own events."""
    store = Ledger(path)
    store.open()
    store.close()
    hasher = Hasher()
    conn = sqlite3.connect(path, isolation_level=None, factory=SqliteConn)
    try:
        conn.execute("PRAGMA synchronous = OFF")  # one sync at the end is enough for a fixture
        pairs = rows // 2
        for start in range(0, pairs, _BATCH):
            conn.execute("BEGIN IMMEDIATE")
            for i in range(start, min(start + _BATCH, pairs)):
                _append_call(conn, hasher, i, varied)
            conn.execute("COMMIT")
        if rows % 2:  # an odd row out is an event: a lone intent would be a call left open
            conn.execute("BEGIN IMMEDIATE")
            event = {"timestamp": "2026-01-01T00:00:00.000Z", "kind": "bench", "detail": "filled for the benchmark"}
            append(conn, hasher, "ledger_events", event)
            conn.execute("COMMIT")
        _set_metrics(conn)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _set_metrics(conn: SqliteConn) -> None:
    """Each agent's metrics as its outcomes give them, as the server keeps them."""
    for row in derived(conn):
        conn.execute(
            "INSERT INTO agent_metrics (agent_id, current_tier, total_runs, compliant_runs, consecutive_compliant,"
            " refused_runs, error_runs, last_active_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [row[name] for name in ("agent_id", *METRIC_COLUMNS)] + [row["last_active_at"]] * 2,
        )


def _intent(i: int, request_id: str, varied: bool) -> dict[str, object]:
    when = _START + timedelta(days=i % 365, seconds=i % 86_400) if varied else _START
    return {
        "timestamp": utc_timestamp(when),
        "request_id": request_id,
        "client_request_id": str(i),
        "agent_id": f"{AGENT}-{i % 8}" if varied else AGENT,
        "agent_version": "1.0.0",
        "tier": 0,
        "action": "read_docs" if not varied or i % 4 else "generate_plan",
        "arguments": json.dumps({"name": f"runbook-{i % 50}"}),
        "tools_digest": "sha256:" + "0" * 64,
        "notes": "",
    }


def _append_call(conn: SqliteConn, hasher: Hasher, i: int, varied: bool) -> None:
    request_id = uuid.uuid4().hex
    intent = append(conn, hasher, "call_intents", _intent(i, request_id, varied))
    decision = _DECISIONS[i % len(_DECISIONS)] if varied else "EXECUTE"
    llm = varied and i % 4 == 0
    outcome = {
        **_intent(i, request_id, varied),
        "decision": decision,
        "confidence": 1.0 if decision == "EXECUTE" else 0.4,
        "success": int(decision != "ERROR"),
        "error_type": "NOT_FOUND" if decision == "ERROR" else None,
        "error_message": "No document by that name" if decision == "ERROR" else None,
        "intent_id": intent.id,
        "refused": 0,
        "duration_ms": 1.5 if not varied else (i * 7919) % 10_007 / 10,
        "output_digest": "sha256:" + hashlib.sha256(request_id.encode()).hexdigest(),
        "llm_model": f"model-{i % 3}" if llm else None,
        "prompt_tokens": 300 + i % 200 if llm else None,
        "completion_tokens": 40 + i % 50 if llm else None,
    }
    append(conn, hasher, "agent_actions", outcome)


def _source_digest() -> str:
    """Changes whenever the ledger's code (its schema, its chain) does, so a stale cached file is not used."""
    digest = hashlib.sha256()
    for source in sorted(Path(ledger.__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def cached_ledger(rows: int, cache_dir: Path, into: Path, *, varied: bool = False) -> Path:
    """A copy at `into` of a ledger with `rows` rows, filled once into `cache_dir` and reused after."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    shape = f"{rows}-varied" if varied else str(rows)
    cached = cache_dir / f"ledger-{shape}-{_source_digest()}.db"
    if not cached.exists():
        partial = cached.with_suffix(".partial")
        for stale in cache_dir.glob(f"ledger-{shape}-*"):
            if varied or not stale.name.startswith(f"ledger-{rows}-varied-"):
                stale.unlink()
        fill(partial, rows, varied=varied)
        partial.with_name(partial.name + ".lock").unlink(missing_ok=True)
        partial.rename(cached)
    into.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached, into)
    return into
