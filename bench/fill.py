"""Ledgers of a given size, written the ledger's own way, for measuring calls against 1k, 100k and 1M rows.

Rows are appended with the ledger's `append` (the same chain, hashes and indexes as the server's), as
intent and outcome pairs shaped like real calls, but many to a transaction: a million single commits
would take longer than the whole benchmark. The agent's metrics are set to match, so the result verifies.
Filled files are kept in a cache keyed by the row count and the ledger's source, and copied for each run.
"""

import hashlib
import json
import shutil
import sqlite3
import uuid
from pathlib import Path

import ledger
from ledger import Ledger
from ledger.append import append
from ledger.chain import Hasher
from ledger.connection import SqliteConn

__all__ = ["AGENT", "cached_ledger", "fill"]

AGENT = "bench-filler"
_BATCH = 20_000


def fill(path: Path, rows: int) -> None:
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
                _append_call(conn, hasher, i)
            conn.execute("COMMIT")
        if rows % 2:  # an odd row out is an event: a lone intent would be a call left open
            conn.execute("BEGIN IMMEDIATE")
            event = {"timestamp": "2026-01-01T00:00:00.000Z", "kind": "bench", "detail": "filled for the benchmark"}
            append(conn, hasher, "ledger_events", event)
            conn.execute("COMMIT")
        conn.execute(
            "INSERT INTO agent_metrics (agent_id, current_tier, total_runs, compliant_runs, consecutive_compliant,"
            " refused_runs, error_runs, last_active_at, created_at, updated_at)"
            " VALUES (?, 0, ?, ?, ?, 0, 0, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z',"
            " '2026-01-01T00:00:00.000Z')",
            (AGENT, pairs, pairs, pairs),
        )
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _intent(i: int, request_id: str) -> dict[str, object]:
    return {
        "timestamp": "2026-01-01T00:00:00.000Z",
        "request_id": request_id,
        "client_request_id": str(i),
        "agent_id": AGENT,
        "agent_version": "1.0.0",
        "tier": 0,
        "action": "read_docs",
        "arguments": json.dumps({"name": f"runbook-{i % 50}"}),
        "tools_digest": "sha256:" + "0" * 64,
        "notes": "",
    }


def _append_call(conn: SqliteConn, hasher: Hasher, i: int) -> None:
    request_id = uuid.uuid4().hex
    intent = append(conn, hasher, "call_intents", _intent(i, request_id))
    outcome = {
        **_intent(i, request_id),
        "decision": "EXECUTE",
        "confidence": 1.0,
        "success": 1,
        "error_type": None,
        "error_message": None,
        "intent_id": intent.id,
        "refused": 0,
        "duration_ms": 1.5,
        "output_digest": "sha256:" + hashlib.sha256(request_id.encode()).hexdigest(),
        "llm_model": None,
        "prompt_tokens": None,
        "completion_tokens": None,
    }
    append(conn, hasher, "agent_actions", outcome)


def _source_digest() -> str:
    """Changes whenever the ledger's code (its schema, its chain) does, so a stale cached file is not used."""
    digest = hashlib.sha256()
    for source in sorted(Path(ledger.__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def cached_ledger(rows: int, cache_dir: Path, into: Path) -> Path:
    """A copy at `into` of a ledger with `rows` rows, filled once into `cache_dir` and reused after."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = cache_dir / f"ledger-{rows}-{_source_digest()}.db"
    if not cached.exists():
        partial = cached.with_suffix(".partial")
        for stale in cache_dir.glob(f"ledger-{rows}-*"):
            stale.unlink()
        fill(partial, rows)
        partial.with_name(partial.name + ".lock").unlink(missing_ok=True)
        partial.rename(cached)
    into.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached, into)
    return into
