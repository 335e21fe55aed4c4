"""The audit ledger: one hash chain, short write transactions, on SQLite or PostgreSQL.

Each record is written in a short transaction, shared by the records other threads write at the same moment
(group commit, see `ledger.group`): one commit for them all, and each call returns only once it is in.

Several server processes may share one ledger (a SQLite file, see `ledger.connection`; a PostgreSQL
database, see `ledger.postgres`). A connection that has seen an error is closed, never reused: the next
operation opens a new one and checks the ledger (its schema, the chain's head, the key) before anything is
recorded again. A write that failed is never retried: the call it belonged to fails.
"""

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ledger.append import Position, Tail, append, check_head
from ledger.budget import Reservation, Stage, reserve
from ledger.chain import Hasher, algorithm
from ledger.connection import Synchronous
from ledger.engines import locate
from ledger.errors import LedgerError
from ledger.group import Write, Writers, alone
from ledger.metrics import update_metrics
from ledger.migrations import MIGRATIONS
from ledger.queries import Queries
from ledger.records import Intent, Outcome, utc_now
from ledger.scrub import Scrubber
from ledger.storage import Conn, Location, Storage, describe

__all__ = ["Ledger", "LedgerError", "Position"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_R = TypeVar("_R")
_MAX_ERROR_MESSAGE = 1000
_MAX_CLIENT_ID = 128
_ARGUMENTS = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str)
"""How a call's arguments are recorded: `json.dumps` with these options, its encoder made once."""


class Ledger(Queries):
    def __init__(
        self,
        location: Location,
        *,
        busy_timeout_s: float = 5.0,
        known_secrets: Iterable[str] = (),
        scrubber: Scrubber | None = None,
        key: bytes | None = None,
        synchronous: Synchronous = "full",
        max_bytes: int | None = None,
    ) -> None:
        """`location` is a SQLite file's path or a `postgresql://` URL (see `ledger.storage`).

        `scrubber` may be shared with the server, so a secret learnt at run time is scrubbed here too.
        `key` keys the chain (HMAC-SHA256); it must come from outside the database. `synchronous="normal"`
        trades the last commits before a power loss (or a database crash) for speed, and is recorded in the ledger.
        `max_bytes` caps a SQLite file: once full, calls are refused as on a full disk.
        """
        self._location = location
        self._max_bytes = max_bytes
        self._opened: Storage | None = None
        self.path = location if isinstance(location, Path) else Path(location)
        self.where = describe(location)
        self._busy_timeout_s = busy_timeout_s
        self._scrub = scrubber or Scrubber()
        self._scrub.add(*known_secrets)
        self._hasher = Hasher(key)
        self._synchronous: Synchronous = synchronous
        self._lock = threading.Lock()
        self._conn: Conn | None = None
        self._tail = Tail()
        self._writers = Writers(self._commit, self._lock, self.where)
        self._last_arguments: tuple[dict[str, Any], tuple[str, ...], str] | None = None
        self.observe: Observe | None = None
        """Told of each write transaction: its table, wall-clock bounds and failure (see `Observe`)."""

    # -- connection ---------------------------------------------------------------------------

    @property
    def _storage(self) -> Storage:
        """The engine's storage, made on first use, in the worker thread that first writes: a PostgreSQL
        ledger's driver is then imported there, never on the event loop."""
        if self._opened is None:
            self._opened = locate(
                self._location, busy_timeout_s=self._busy_timeout_s, synchronous=self._synchronous,
                max_bytes=self._max_bytes,
            )  # fmt: skip
        return self._opened

    def open(self) -> None:
        """Open and check the ledger now, rather than on the first call (the server does this at start-up)."""
        self._with_connection(lambda _: None)

    def _open(self, deadline: float) -> Conn:
        storage = self._storage
        conn = storage.connect(deadline)
        try:
            storage.begin(conn, deadline, relaxed=False)
            applied = storage.prepare(conn)
            self._check_schema(conn, always=True)
            events = self._check_head(conn)
            if applied:
                # The upgrade is chained too, so the record shows when the schema changed under it.
                verb = "created" if len(applied) == len(MIGRATIONS) else "upgraded"
                events.insert(0, ("schema", f"schema {verb}: {', '.join(applied)}"))
            self._tail.forget()
            for kind, detail in events:
                row = {"timestamp": utc_now(), "kind": kind, "detail": detail}
                append(conn, self._hasher, "ledger_events", row, self._tail)
            storage.end(conn, commit=True, relaxed=False)
        except BaseException:
            self._tail.forget()
            storage.discard(conn)
            raise
        return conn

    def _check_head(self, conn: Conn) -> list[tuple[str, str]]:
        """Refuse to extend a chain whose newest row is not what it claims; return the events to record."""
        at = check_head(conn, self._hasher, self.where)
        events = []
        if self._hasher.keyed and at.table is not None and algorithm(at.hash) == "sha256":
            events.append(("chain-keyed", f"rows from seq {at.seq + 1} on are keyed (HMAC-SHA256)"))
        if self._synchronous != "full":
            events.append(
                ("durability", f"opened with synchronous={self._synchronous.upper()} (PLANNER_MCP_LEDGER_SYNC): "
                 "calls recorded by this process may be lost on a power failure")
            )  # fmt: skip
        return events

    def _check_schema(self, conn: Conn, *, always: bool = False) -> None:
        """Refuse a ledger whose schema is not the one planner-mcp made (a trigger that silences inserts, say).

        Compared in full at open, and again whenever the storage says the schema may have moved (SQLite: its
        schema cookie, which any change by any connection moves).
        """
        if not self._storage.schema_changed(conn) and not always:
            return
        if found := self._storage.differences(conn):
            more = f" (also: {', '.join(d.name for d in found[1:])})" if len(found) > 1 else ""
            raise LedgerError(
                f"the schema of the ledger {self.where} is not the one planner-mcp made: {found[0].problem}{more}; "
                "run `planner-mcp ledger verify`",
                "tampered",
            )

    def _with_connection(self, work: Callable[[Conn], _T]) -> _T:
        """Run `work` (a read) under the ledger's locks, on the ledger's connection."""
        with self._lock:
            return self._connected(work, time.monotonic() + self._busy_timeout_s)

    def _connected(self, work: Callable[[Conn], _T], deadline: float) -> _T:
        """Run `work` on the connection, opened (and checked) first if need be; the caller holds the ledger's lock.

        Any error closes the connection: the engine's turned into a `LedgerError` naming its cause; anything else
        (a LedgerError, a bug) inside a transaction rolls it back with the connection, so no write lock outlives it.
        """
        storage = self._storage
        if self._conn is not None and not storage.alive(self._conn):
            self._discard()  # ended while idle (the database restarted): opened afresh, and checked, below
        with storage.guard(deadline, connected=self._conn is not None):
            try:
                if self._conn is None:
                    self._conn = self._open(deadline)
                return work(self._conn)
            except storage.errors as exc:
                error = storage.failed(exc)
                self._discard()
                raise error from exc
            except BaseException:
                self._discard()
                raise

    def _write(self, work: Callable[[Conn], _T], table: str, *, synced: bool = True) -> _T:
        """`work` committed, in a transaction it may share with the writes of other threads (see `ledger.group`).

        `synced=False` commits without waiting for the disk (SQLite: synchronous=NORMAL in WAL; PostgreSQL:
        synchronous_commit off): the row survives a crash of this process, and is made durable by the next
        synced commit. The intent of a call uses it: its outcome's synced commit follows within the call. A group
        commits synced when any of its writes asked to be.
        """
        write = Write(work, synced)
        self._settle((write,), table)
        return write.outcome()

    def _write_each(
        self, made: Callable[[_R], Callable[[Conn], _T]], records: Sequence[_R], table: str, *, synced: bool
    ) -> list[_T | BaseException]:
        """`_write` for each record's work (`made`), queued together so they share a transaction: what each
        returned, or what kept it out. A record whose work cannot be made is kept out alone."""
        writes = [_made(made, record, synced) for record in records]
        if queued := [write for write in writes if not write.settled]:
            self._settle(queued, table)
        return [write.settled_as() for write in writes]

    def _settle(self, writes: Sequence[Write[Any]], table: str) -> None:
        """Run `writes` to their commit, `observe` (when set) told of each: how long it took and how it failed."""
        started = time.time_ns()
        self._writers.run_all(writes)
        if (observe := self.observe) is not None:
            for write in writes:
                error = write.error
                if error is None or isinstance(error, LedgerError):  # a refusal or a bug is no failed write
                    _tell(observe, table, started, None if error is None else error.reason)

    def _commit(self, writes: list[Write[Any]]) -> None:
        """Commit `writes` in one transaction; the caller holds the ledger's lock (see `ledger.group`)."""
        synced = writes[0].synced if len(writes) == 1 else any(write.synced for write in writes)
        relaxed = not synced and self._synchronous == "full"
        deadline = time.monotonic() + self._busy_timeout_s
        self._connected(lambda conn: self._transaction(conn, writes, deadline, relaxed=relaxed), deadline)

    def _transaction(self, conn: Conn, writes: list[Write[Any]], deadline: float, *, relaxed: bool) -> None:
        """The writes in one transaction, committed unless each of them failed on its own (then rolled back)."""
        storage = self._storage
        storage.begin(conn, deadline, relaxed=relaxed)
        try:
            self._check_schema(conn)
            if len(writes) == 1:
                self._run(conn, writes[0])
                commit = writes[0].error is None
            else:
                for write in writes:
                    self._run_saved(conn, write)
                commit = any(write.error is None for write in writes)
            storage.end(conn, commit=commit, relaxed=relaxed)
        except BaseException:
            self._tail.forget()
            raise
        if not commit:
            self._tail.forget()

    def _run(self, conn: Conn, write: Write[Any]) -> None:
        """One write's work; a failure of its own is kept for it (the transaction rolls back), any other ends it."""
        try:
            write.result = write.work(conn)
        except BaseException as exc:
            if alone(exc, conn, self._storage.errors):
                write.error = exc
                return
            if not isinstance(exc, self._storage.errors):
                write.error = exc  # its own exception; the others are told their transaction failed
            raise

    def _run_saved(self, conn: Conn, write: Write[Any]) -> None:
        """`_run` under a savepoint: a failure of its own rolls back this write alone, and the chain's tail with it."""
        storage = self._storage
        storage.savepoint(conn)
        mark = self._tail.mark()
        self._run(conn, write)
        if write.error is not None:
            storage.rollback_to(conn)
            self._tail.restore(mark)

    def _discard(self) -> None:
        self._tail.forget()
        conn, self._conn = self._conn, None
        if conn is not None:
            self._storage.discard(conn)

    def close(self) -> None:
        if self._opened is None:
            return  # never used: nothing was opened, and nothing need be loaded to close it
        with self._lock:
            # The last connection to close may write (SQLite checkpoints the WAL): under the ledger's lock, like
            # every write. A lock that cannot be had (the location is gone, a stuck process) does not keep the
            # connection open.
            try:
                with self._storage.guard(time.monotonic() + self._busy_timeout_s, connected=True):
                    self._discard()
            except LedgerError as exc:
                if self._conn is not None:
                    logger.warning("Closing the ledger without its lock: %s", exc)
                self._discard()
            finally:
                self._storage.close()

    # -- writing ------------------------------------------------------------------------------

    def _json(self, value: dict[str, Any]) -> str:
        return _ARGUMENTS.encode(self._scrub.value(value))

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
        return self._write(self._intent_write(intent, reservation), "call_intents", synced=False)

    def record_intents(self, intents: Sequence[Intent]) -> list[Position | BaseException]:
        """Commit the intents of several calls in one transaction, as `record_intent` does one: for each, its
        place in the chain, or the exception that kept it out (returned, not raised). One that fails on its own
        fails alone; a commit that fails fails them all."""
        return self._write_each(self._intent_write, intents, "call_intents", synced=False)

    def _intent_write(self, intent: Intent, reservation: Reservation | None = None) -> Callable[[Conn], Position]:
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

        def insert(conn: Conn) -> Position:
            position = append(conn, self._hasher, "call_intents", row, self._tail)
            if reservation is not None:
                self._reserve(conn, intent.request_id, intent.agent_id, "intent", reservation)
            return position

        return insert

    def reserve_tokens(self, request_id: str, agent_id: str, reservation: Reservation) -> None:
        """Reserve more of the day's budget for a call under way (its prompt, before the request is sent), or
        raise `BudgetExhausted`. Not synced: the outcome's commit is, as for the intent."""
        self._write(
            lambda conn: self._reserve(conn, request_id, agent_id, "request", reservation),
            "token_reservations",
            synced=False,
        )

    def _reserve(self, conn: Conn, request_id: str, agent_id: str, stage: Stage, reservation: Reservation) -> None:
        reserve(conn, self._hasher, self._tail, request_id=request_id, agent_id=agent_id, stage=stage,
                reservation=reservation)  # fmt: skip

    def record_outcome(self, outcome: Outcome) -> Position:
        """Commit the outcome of a call and the agent's metrics together; return its place in the chain."""
        return self._write(self._outcome_write(outcome), "agent_actions")

    def record_outcomes(self, outcomes: Sequence[Outcome]) -> list[Position | BaseException]:
        """Commit the outcomes of several calls in one transaction, as `record_outcome` does one: for each, its
        place in the chain, or the exception that kept it out (returned, not raised), as `record_intents`."""
        return self._write_each(self._outcome_write, outcomes, "agent_actions", synced=True)

    def _outcome_write(self, outcome: Outcome) -> Callable[[Conn], Position]:
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

        def insert(conn: Conn) -> Position:
            position = append(conn, self._hasher, "agent_actions", row, self._tail)
            update_metrics(conn, outcome)
            return position

        return insert

    def record_event(self, kind: str, detail: str) -> Position:
        """Chain a note about the ledger itself (a durability mode, a key, a schema upgrade)."""
        row = {"timestamp": utc_now(), "kind": kind, "detail": self._scrub.text(detail)}
        return self._write(lambda conn: append(conn, self._hasher, "ledger_events", row, self._tail), "ledger_events")

    def _read(self, work: Callable[[Conn], _T]) -> _T:
        return self._with_connection(work)


Observe = Callable[[str, int, int, str | None], None]
"""(table, started, ended, failure): a write transaction that appended to `table`, its `time.time_ns()` bounds,
and the `LedgerError.reason` it failed with (None when it committed). Called in the writing thread."""


def _made(made: Callable[[_R], Callable[[Conn], _T]], record: _R, synced: bool) -> Write[_T]:
    """The write of `record`'s work; settled with the failure already when the work cannot be made."""
    try:
        return Write(made(record), synced)
    except Exception as exc:
        return Write.failed(exc)


def _tell(observe: Observe, table: str, started: int, failure: str | None) -> None:
    """Monitoring is told; its failure is logged and never becomes the write's."""
    try:
        observe(table, started, time.time_ns(), failure)
    except Exception:
        logger.exception("Monitoring failed to take a ledger write's figures")
