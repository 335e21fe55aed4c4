"""The SQLite audit ledger: one hash chain, WAL, synchronous=FULL, one short write transaction per record.

Several server processes may share one file (see `ledger.connection`). A connection that has seen an
error is closed, never reused: after an I/O error SQLite's state is unknown, so the next operation reopens
the file and checks it (integrity, the chain's head, the key) before anything is recorded again. A write
that failed is never retried: the call it belonged to fails.
"""

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from ledger.append import Position, Tail, append, check_head
from ledger.chain import Hasher, algorithm
from ledger.connection import FileLock, Synchronous, begin_immediate, connect
from ledger.errors import LedgerError, from_sqlite
from ledger.migrations import MIGRATIONS, migrate
from ledger.queries import Queries
from ledger.records import Intent, Outcome, utc_now
from ledger.scrub import Scrubber

__all__ = ["Ledger", "LedgerError", "Position"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_MAX_ERROR_MESSAGE = 1000
_MAX_CLIENT_ID = 128


class Ledger(Queries):
    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_s: float = 5.0,
        known_secrets: Iterable[str] = (),
        scrubber: Scrubber | None = None,
        key: bytes | None = None,
        synchronous: Synchronous = "full",
        max_bytes: int | None = None,
    ) -> None:
        """`scrubber` may be shared with the server, so a secret learnt at run time is scrubbed here too.

        `key` keys the chain (HMAC-SHA256); it must come from outside the database. `synchronous="normal"`
        trades the last commits before a power loss for speed, and is recorded in the ledger when used.
        `max_bytes` caps the file: once full, calls are refused as on a full disk.
        """
        self.path = path
        self._busy_timeout_s = busy_timeout_s
        self._scrub = scrubber or Scrubber()
        self._scrub.add(*known_secrets)
        self._hasher = Hasher(key)
        self._synchronous: Synchronous = synchronous
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._file_lock = FileLock(path.with_name(path.name + ".lock"))
        self._conn: sqlite3.Connection | None = None
        self._tail = Tail()
        self._suspect = False
        self._last_arguments: tuple[dict[str, Any], tuple[str, ...], str] | None = None

    # -- connection ---------------------------------------------------------------------------

    def open(self) -> None:
        """Open and check the ledger now, rather than on the first call (the server does this at start-up)."""
        self._with_connection(lambda _: None)

    def _open(self, deadline: float) -> sqlite3.Connection:
        conn = connect(
            self.path, busy_timeout_s=self._busy_timeout_s, synchronous=self._synchronous, max_bytes=self._max_bytes
        )
        try:
            if self._suspect:
                verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
                logger.warning("Reopened the ledger %s after an I/O error: integrity check %s", self.path, verdict)
                if verdict != "ok":
                    raise LedgerError(
                        f"the ledger {self.path} failed its integrity check after an error: {verdict}", "corrupt"
                    )
            begin_immediate(conn, deadline)
            applied = migrate(conn)
            events = self._check_head(conn)
            if applied:
                # The upgrade is chained too, so the record shows when the schema changed under it.
                verb = "created" if len(applied) == len(MIGRATIONS) else "upgraded"
                events.insert(0, ("schema", f"schema {verb}: {', '.join(applied)}"))
            self._tail.forget()
            for kind, detail in events:
                row = {"timestamp": utc_now(), "kind": kind, "detail": detail}
                append(conn, self._hasher, "ledger_events", row, self._tail)
            conn.execute("COMMIT")
        except BaseException:
            self._tail.forget()
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
            raise
        self._suspect = False
        return conn

    def _check_head(self, conn: sqlite3.Connection) -> list[tuple[str, str]]:
        """Refuse to extend a chain whose newest row is not what it claims; return the events to record."""
        at = check_head(conn, self._hasher, self.path)
        events = []
        if self._hasher.keyed and at.table is not None and algorithm(at.hash) == "sha256":
            events.append(("chain-keyed", f"rows from seq {at.seq + 1} on are keyed (HMAC-SHA256)"))
        if self._synchronous != "full":
            events.append(
                ("durability", f"opened with synchronous={self._synchronous.upper()} (PLANNER_MCP_LEDGER_SYNC): "
                 "calls recorded by this process may be lost on a power failure")
            )  # fmt: skip
        return events

    def _with_connection(
        self, work: Callable[[sqlite3.Connection], _T], *, write: bool = False, synced: bool = True
    ) -> _T:
        """Run `work` under both locks; with `write`, in one transaction that commits.

        `synced=False` commits without waiting for the disk (synchronous=NORMAL in WAL): the row survives a
        crash of this process, and a power failure once the next synced commit, by any process, has flushed
        the WAL. The intent of a call uses it: its outcome's synced commit follows within the call.
        """
        relax = write and not synced and self._synchronous == "full"
        with self._lock:
            deadline = time.monotonic() + self._busy_timeout_s
            if self._conn is None:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise LedgerError(f"cannot create the ledger directory {self.path.parent}: {exc.strerror}") from exc
            self._file_lock.acquire(deadline)
            try:
                if self._conn is None:
                    self._conn = self._open(deadline)
                if not write:
                    return work(self._conn)
                if relax:
                    self._conn.execute("PRAGMA synchronous = NORMAL")
                begin_immediate(self._conn, deadline)
                try:
                    result = work(self._conn)
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._tail.forget()
                    raise
                if relax:
                    self._conn.execute("PRAGMA synchronous = FULL")
                return result
            except sqlite3.Error as exc:
                error = self._failed(exc)
                self._discard()
                raise error from exc
            except LedgerError:
                self._discard()
                raise
            finally:
                self._file_lock.release()

    def _failed(self, exc: sqlite3.Error) -> LedgerError:
        """The error for `exc`; after an I/O error or corruption, the next open checks the file first.

        SQLite reports a write to a file that may no longer be written (made immutable, its file system remounted
        read-only) as an I/O error: that cause is named instead.
        """
        error = from_sqlite(self.path, exc)
        self._suspect = self._suspect or error.reason in ("io", "corrupt")
        if error.reason != "io":
            return error
        for file in (self.path, self.path.with_name(self.path.name + "-wal")):
            if file.exists() and not os.access(file, os.W_OK):
                return LedgerError(f"the ledger {self.path} is read-only: {file.name} cannot be written ({exc})",
                                   "read-only")  # fmt: skip
        return error

    def _discard(self) -> None:
        self._tail.forget()
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

    def close(self) -> None:
        with self._lock:
            # The last connection to close checkpoints the WAL: under the file lock, like every write. A lock
            # that cannot be had (the location is gone, a stuck process) does not keep the connection open.
            try:
                self._file_lock.acquire(time.monotonic() + self._busy_timeout_s)
            except LedgerError as exc:
                if self._conn is not None:
                    logger.warning("Closing the ledger without its lock: %s", exc)
            try:
                self._discard()
            finally:
                self._file_lock.release()
                self._file_lock.close()

    # -- writing ------------------------------------------------------------------------------

    def _json(self, value: dict[str, Any]) -> str:
        return json.dumps(self._scrub.value(value), sort_keys=True, ensure_ascii=False, default=str)

    def _arguments(self, record: Intent | Outcome) -> str:
        """A call's arguments as recorded: scrubbed JSON, encoded once for its intent and its outcome.

        Kept while the same arguments object comes back under the same known secrets (a secret learnt during
        the call scrubs the outcome's copy afresh). Records never change their arguments after they are made.
        """
        known, last = self._scrub.known, self._last_arguments
        if last is not None and last[0] is record.arguments and last[1] is known:
            return last[2]
        encoded = self._json(record.arguments)
        self._last_arguments = (record.arguments, known, encoded)
        return encoded

    def _client_id(self, value: str | None) -> str | None:
        return None if value is None else self._scrub.text(value[:_MAX_CLIENT_ID])

    def record_intent(self, intent: Intent) -> Position:
        """Commit the intent of a call; return its row id and place in the chain. Raises `LedgerError`.

        The commit does not wait for the disk: the outcome's commit, which does, follows within the call and
        syncs both (one fsync per call, not two). Until it lands, the intent survives this process crashing.
        """
        row = {
            "timestamp": intent.timestamp,
            "request_id": intent.request_id,
            "client_request_id": self._client_id(intent.client_request_id),
            "agent_id": intent.agent_id,
            "agent_version": intent.agent_version,
            "tier": intent.tier,
            "action": self._scrub.text(intent.action),
            "arguments": self._arguments(intent),
            "tools_digest": intent.tools_digest,
            "notes": self._scrub.text(intent.notes),
        }
        return self._with_connection(
            lambda conn: append(conn, self._hasher, "call_intents", row, self._tail), write=True, synced=False
        )

    def record_outcome(self, outcome: Outcome) -> Position:
        """Commit the outcome of a call and the agent's metrics together; return its place in the chain."""
        error_message = outcome.error_message
        if error_message is not None:
            error_message = self._scrub.text(error_message)[:_MAX_ERROR_MESSAGE]
        row = {
            "timestamp": outcome.timestamp,
            "agent_id": outcome.agent_id,
            "agent_version": outcome.agent_version,
            "tier": outcome.tier,
            "action": self._scrub.text(outcome.action),
            "decision": outcome.decision,
            "confidence": float(outcome.confidence),
            "success": int(outcome.success),
            "error_type": outcome.error_type,
            "error_message": error_message,
            "request_id": outcome.request_id,
            "client_request_id": self._client_id(outcome.client_request_id),
            "intent_id": outcome.intent_id,
            "refused": int(outcome.refused),
            "duration_ms": outcome.duration_ms,
            "arguments": self._arguments(outcome),
            "output_digest": outcome.output_digest,
            "llm_model": None if outcome.llm_model is None else self._scrub.text(outcome.llm_model),
            "prompt_tokens": outcome.prompt_tokens,
            "completion_tokens": outcome.completion_tokens,
            "tools_digest": outcome.tools_digest,
            "notes": self._scrub.text(outcome.notes),
        }

        def insert(conn: sqlite3.Connection) -> Position:
            position = append(conn, self._hasher, "agent_actions", row, self._tail)
            _update_metrics(conn, outcome)
            return position

        return self._with_connection(insert, write=True)

    def record_event(self, kind: str, detail: str) -> Position:
        """Chain a note about the ledger itself (a durability mode, a key, a schema upgrade)."""
        row = {"timestamp": utc_now(), "kind": kind, "detail": self._scrub.text(detail)}
        return self._with_connection(
            lambda conn: append(conn, self._hasher, "ledger_events", row, self._tail), write=True
        )

    def _read(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        return self._with_connection(work)


def _update_metrics(conn: sqlite3.Connection, outcome: Outcome) -> None:
    """The seed's agent_metrics, kept current in the outcome's own transaction, and the daily token use."""
    compliant = int(outcome.success)
    refused = int(outcome.refused)
    errored = int(not outcome.success and not outcome.refused)
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
        (
            outcome.agent_id, outcome.tier, compliant, compliant, refused, errored,
            outcome.timestamp, outcome.timestamp, outcome.timestamp,
        ),
    )  # fmt: skip
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
