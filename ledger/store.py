"""The SQLite audit ledger: WAL, synchronous=FULL, one short write transaction per record.

Several server processes may share one file: every write takes the write lock up front (`BEGIN
IMMEDIATE`) and waits for it within the busy timeout. A connection that has seen an error is closed,
never reused: after an I/O error SQLite's state is unknown, so the next write reopens the file cleanly.
"""

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from ledger.migrations import migrate
from ledger.records import Intent, Outcome
from ledger.scrub import Scrubber

__all__ = ["Ledger", "LedgerError"]

_T = TypeVar("_T")
_SYNCHRONOUS_FULL = 2
_MAX_ERROR_MESSAGE = 1000


class LedgerError(Exception):
    """The ledger cannot record: callers must fail closed."""


class Ledger:
    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_s: float = 5.0,
        known_secrets: Iterable[str] = (),
        scrubber: Scrubber | None = None,
    ) -> None:
        """`scrubber` may be shared with the server, so a secret learnt at run time is scrubbed here too."""
        self.path = path
        self._busy_timeout_s = busy_timeout_s
        self._scrub = scrubber or Scrubber()
        self._scrub.add(*known_secrets)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    # -- connection ---------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"cannot create the ledger directory {self.path.parent}: {exc.strerror}") from exc
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise LedgerError(f"the ledger {self.path} cannot use WAL (journal_mode is {mode})")
            conn.execute("PRAGMA synchronous = FULL")
            if conn.execute("PRAGMA synchronous").fetchone()[0] != _SYNCHRONOUS_FULL:
                raise LedgerError(f"the ledger {self.path} refused synchronous=FULL")
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _with_connection(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self._open()
                return work(self._conn)
            except sqlite3.Error as exc:
                self._discard()
                raise LedgerError(f"the ledger {self.path} cannot be written: {exc}") from exc
            except LedgerError:
                self._discard()
                raise

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite may already have rolled back (FULL, IOERR, BUSY); the original error is what matters.
        finally:
            conn.close()

    def _write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        def transaction(conn: sqlite3.Connection) -> _T:
            conn.execute("BEGIN IMMEDIATE")
            result = work(conn)
            conn.execute("COMMIT")
            return result

        return self._with_connection(transaction)

    def close(self) -> None:
        with self._lock:
            self._discard()

    # -- writing ------------------------------------------------------------------------------

    def _json(self, value: dict[str, Any]) -> str:
        return json.dumps(self._scrub.value(value), sort_keys=True, ensure_ascii=False, default=str)

    def record_intent(self, intent: Intent) -> int:
        """Commit the intent of a call; return its row id. Raises `LedgerError` when it cannot."""
        row = (
            intent.timestamp,
            intent.request_id,
            intent.agent_id,
            intent.agent_version,
            intent.tier,
            self._scrub.text(intent.action),
            self._json(intent.arguments),
            intent.tools_digest,
            self._scrub.text(intent.notes),
        )

        def insert(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "INSERT INTO call_intents (timestamp, request_id, agent_id, agent_version, tier, action,"
                " arguments, tools_digest, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

        return self._write(insert)

    def record_outcome(self, outcome: Outcome) -> int:
        """Commit the outcome of a call and the agent's metrics together; return the row id."""
        error_message = outcome.error_message
        if error_message is not None:
            error_message = self._scrub.text(error_message)[:_MAX_ERROR_MESSAGE]
        row = (
            outcome.timestamp,
            outcome.agent_id,
            outcome.agent_version,
            outcome.tier,
            self._scrub.text(outcome.action),
            outcome.decision,
            outcome.confidence,
            int(outcome.success),
            outcome.error_type,
            error_message,
            outcome.request_id,
            outcome.intent_id,
            int(outcome.refused),
            outcome.duration_ms,
            self._json(outcome.arguments),
            outcome.output_digest,
            outcome.llm_model,
            outcome.prompt_tokens,
            outcome.completion_tokens,
            outcome.tools_digest,
            self._scrub.text(outcome.notes),
        )
        compliant = int(outcome.success)
        refused = int(outcome.refused)
        errored = int(not outcome.success and not outcome.refused)
        metrics = (
            outcome.agent_id, outcome.tier, compliant, compliant, refused, errored,
            outcome.timestamp, outcome.timestamp, outcome.timestamp,
        )  # fmt: skip

        def insert(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "INSERT INTO agent_actions (timestamp, agent_id, agent_version, tier, action, decision, confidence,"
                " success, error_type, error_message, request_id, intent_id, refused, duration_ms, arguments,"
                " output_digest, llm_model, prompt_tokens, completion_tokens, tools_digest, notes)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            conn.execute(
                """
                INSERT INTO agent_metrics (agent_id, current_tier, total_runs, compliant_runs, consecutive_compliant,
                                           refused_runs, error_runs, last_active_at, created_at, updated_at)
                VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(agent_id) DO UPDATE SET
                    current_tier = excluded.current_tier,
                    total_runs = total_runs + 1,
                    compliant_runs = compliant_runs + excluded.compliant_runs,
                    consecutive_compliant = CASE WHEN excluded.compliant_runs = 1
                                                 THEN consecutive_compliant + 1 ELSE 0 END,
                    refused_runs = refused_runs + excluded.refused_runs,
                    error_runs = error_runs + excluded.error_runs,
                    last_active_at = excluded.last_active_at,
                    updated_at = excluded.updated_at
                """,
                metrics,
            )
            if outcome.prompt_tokens is not None or outcome.completion_tokens is not None:
                conn.execute(
                    """
                    INSERT INTO agent_token_usage (agent_id, day, prompt_tokens, completion_tokens, llm_calls)
                    VALUES (?, substr(?, 1, 10), ?, ?, 1)
                    ON CONFLICT(agent_id, day) DO UPDATE SET
                        prompt_tokens = prompt_tokens + excluded.prompt_tokens,
                        completion_tokens = completion_tokens + excluded.completion_tokens,
                        llm_calls = llm_calls + 1
                    """,
                    (outcome.agent_id, outcome.timestamp, outcome.prompt_tokens or 0, outcome.completion_tokens or 0),
                )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

        return self._write(insert)

    # -- reading ------------------------------------------------------------------------------

    def tokens_spent(self, agent_id: str, day: str) -> int:
        """LLM tokens (prompt and completion) the agent's recorded calls spent on `day` (UTC, YYYY-MM-DD)."""

        def select(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT prompt_tokens + completion_tokens FROM agent_token_usage WHERE agent_id = ? AND day = ?",
                (agent_id, day),
            ).fetchone()
            return int(row[0]) if row else 0

        return self._with_connection(select)

    def tail(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest `limit` outcomes, oldest first."""

        def select(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            cursor = conn.execute("SELECT * FROM agent_actions ORDER BY id DESC LIMIT ?", (limit,))
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in reversed(cursor.fetchall())]

        return self._with_connection(select)
