"""The SQLite audit ledger: one hash chain, WAL, synchronous=FULL, one short write transaction per record.

Several server processes may share one file (see `ledger.connection`). A connection that has seen an
error is closed, never reused: after an I/O error SQLite's state is unknown, so the next operation reopens
the file and checks it (integrity, the chain's head, the key) before anything is recorded again. A write
that failed is never retried: the call it belonged to fails.
"""

import contextlib
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
from ledger.budget import BudgetExhausted, Reservation, Stage, reserve
from ledger.chain import Hasher, algorithm
from ledger.connection import FileLock, Synchronous, begin_immediate, connect
from ledger.errors import LedgerError, from_sqlite
from ledger.metrics import update_metrics
from ledger.migrations import MIGRATIONS, migrate
from ledger.queries import Queries
from ledger.records import Intent, Outcome, utc_now
from ledger.schema import differences
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
        self._schema_version: int | None = None
        self._last_arguments: tuple[dict[str, Any], tuple[str, ...], str] | None = None

    # -- connection ---------------------------------------------------------------------------

    def open(self) -> None:
        """Open and check the ledger now, rather than on the first call (the server does this at start-up)."""
        self._with_connection(lambda _: None)

    def _open(self, deadline: float) -> sqlite3.Connection:
        _create_private(self.path)
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
            self._schema_version = None
            self._check_schema(conn)
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

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        """Refuse a ledger whose schema is not the migrations' (a trigger that silences inserts, say).

        Compared in full at open, and again whenever SQLite's schema cookie moves, which any change to the
        schema by any connection does: a trigger added while the server runs is caught at the next write.
        """
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        if version == self._schema_version:
            return
        if found := differences(conn):
            more = f" (also: {', '.join(d.name for d in found[1:])})" if len(found) > 1 else ""
            raise LedgerError(
                f"the schema of the ledger {self.path} is not the one planner-mcp made: {found[0].problem}{more}; "
                "run `planner-mcp ledger verify`",
                "tampered",
            )
        self._schema_version = version

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
                    self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                except OSError as exc:
                    raise LedgerError(f"cannot create the ledger directory {self.path.parent}: {exc.strerror}") from exc
            self._file_lock.acquire(deadline)
            try:
                if self._conn is None:
                    self._conn = self._open(deadline)
                if not write:
                    return work(self._conn)
                return self._transaction(self._conn, work, deadline, relax=relax)
            except BudgetExhausted:
                raise  # a refusal, not a failure: nothing was written and the connection is sound
            except sqlite3.Error as exc:
                error = self._failed(exc)
                self._discard()
                raise error from exc
            except BaseException:
                # Anything else inside a transaction (a LedgerError, a value sqlite3 cannot bind, a bug) rolls
                # it back with the connection, so no write lock outlives the call.
                self._discard()
                raise
            finally:
                self._file_lock.release()

    def _transaction(
        self, conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], _T], deadline: float, *, relax: bool
    ) -> _T:
        if relax:
            conn.execute("PRAGMA synchronous = NORMAL")
        begin_immediate(conn, deadline)
        try:
            self._check_schema(conn)
            result = work(conn)
            conn.execute("COMMIT")
        except BudgetExhausted:
            conn.execute("ROLLBACK")
            self._tail.forget()
            if relax:
                conn.execute("PRAGMA synchronous = FULL")
            raise
        except BaseException:
            self._tail.forget()
            raise
        if relax:
            conn.execute("PRAGMA synchronous = FULL")
        return result

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

    def record_intent(self, intent: Intent, reservation: Reservation | None = None) -> Position:
        """Commit the intent of a call; return its row id and place in the chain. Raises `LedgerError`.

        The commit does not wait for the disk: the outcome's commit, which does, follows within the call and
        syncs both (one fsync per call, not two). Until it lands, the intent survives this process crashing.
        With `reservation` (an LLM call under a token budget), the call's worst case is reserved in the same
        transaction, or `BudgetExhausted` is raised and nothing is written (see `ledger.budget`).
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

        def insert(conn: sqlite3.Connection) -> Position:
            position = append(conn, self._hasher, "call_intents", row, self._tail)
            if reservation is not None:
                self._reserve(conn, intent.request_id, intent.agent_id, "intent", reservation)
            return position

        return self._with_connection(insert, write=True, synced=False)

    def reserve_tokens(self, request_id: str, agent_id: str, reservation: Reservation) -> None:
        """Reserve more of the day's budget for a call under way (its prompt, before the request is sent), or
        raise `BudgetExhausted`. Not synced: the outcome's commit is, as for the intent."""
        self._with_connection(
            lambda conn: self._reserve(conn, request_id, agent_id, "request", reservation), write=True, synced=False
        )

    def _reserve(
        self, conn: sqlite3.Connection, request_id: str, agent_id: str, stage: Stage, reservation: Reservation
    ) -> None:
        reserve(conn, self._hasher, self._tail, request_id=request_id, agent_id=agent_id, stage=stage,
                reservation=reservation)  # fmt: skip

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
            update_metrics(conn, outcome)
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


def _create_private(path: Path) -> None:
    """Create the ledger file readable by its owner only (SQLite gives its WAL and shared-memory files the
    same mode); a file that exists is left as it is. When it cannot be created, opening it says why."""
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
