"""The ledger in a PostgreSQL database: many writers on many hosts, one chain.

Appends are serialised by a transaction-scoped advisory lock taken first in every write transaction: the
head read after it is the head the row is written after, in any process on any host, and the lock is
released only by the commit (or rollback) that makes the row visible, so the next writer reads it as its
head. Sequence numbers therefore stay contiguous with no fork, and each table's unique index on `seq` turns
a writer that skipped the lock into a refused insert rather than a second row at the same place.

A write transaction (holding the writes a process's threads make at once: see `ledger.group`) is two round
trips: the lock and the chain's head, then its rows, the metrics and the COMMIT in one pipeline of prepared
statements (each insert's row count checked before anything cites the row).
No transaction waits for the disk while it holds the lock: each commits with `synchronous_commit` off, which
releases the lock as soon as the row is in the WAL, and a synced write (an outcome) then waits for the WAL
flush outside the lock, in a transaction of its own whose commit writes one logical message and is flushed
with everything before it (WAL is flushed in order). So writers' flushes overlap (group commit) instead of
queueing behind the lock, and a call is acknowledged only once its outcome, and its intent before it, are on
disk. A call's intent does not wait at all: the outcome's flush, within the call, covers it. Lock waits are
bounded by the ledger's busy timeout, statements by twice it (so a lock held elsewhere is named as such). A
connection that saw any error is closed, one the server ended while idle (a restart) is replaced before it is
used, and the next operation connects afresh, so calls succeed again without a restart once the database is back.
"""

import contextlib
import select
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import psycopg

from ledger.append import ends_query
from ledger.errors import LedgerError
from ledger.postgres.catalog import SCHEMA, differences, require_privileges
from ledger.postgres.errors import from_postgres, unreadable_url
from ledger.postgres.urls import bounded, redacted
from ledger.storage import Conn, Difference

__all__ = ["LOCK_KEY", "SCHEMA_RECHECK_S", "PostgresConn", "PostgresStorage"]

LOCK_KEY = (0x706C616E, 0x6C656467)
"""The advisory lock every writer of the chain takes, as two 32-bit keys ("plan", "ledg")."""

SCHEMA_RECHECK_S = 5.0
"""How often a running server compares the catalog with the ledger's schema, at most."""

_LOCK = f"SELECT pg_advisory_xact_lock({LOCK_KEY[0]}, {LOCK_KEY[1]})"
_HEAD = ends_query()
_BEGIN = f"BEGIN; SET LOCAL synchronous_commit = off; {_LOCK}"
_BEGIN_READING = _BEGIN + "; EXECUTE {name}"
"""One round trip: the transaction, the lock, then (a statement of its own, so its snapshot is taken once the
lock is held) the chain's ends, through a statement the session prepared once, so not planned under the lock."""
_FLUSH = ("BEGIN", "SELECT pg_logical_emit_message(true, 'planner-mcp', 'flush')", "COMMIT")
"""Waits until the WAL is flushed past everything this session committed: the message gives the transaction a
commit record, and the session's synchronous_commit (on) makes that commit wait for the flush."""
_PLACEHOLDERS: dict[str, str] = {}


def _storable(parameters: Sequence[Any]) -> None:
    """Raise what the driver would on binding a value PostgreSQL's text cannot hold: a NUL, a lone surrogate."""
    for value in parameters:
        if isinstance(value, str):
            if "\x00" in value:
                raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
            value.encode()


def _placeheld(sql: str) -> str:
    """The ledger's SQL with psycopg's placeholders: `?` becomes `%s` (and a literal `%` is escaped)."""
    query = _PLACEHOLDERS.get(sql)
    if query is None:
        query = _PLACEHOLDERS[sql] = sql.replace("%", "%%").replace("?", "%s")
    return query


class PostgresConn:
    """A psycopg connection speaking the ledger's shared SQL: `?` placeholders become psycopg's `%s`."""

    unstorable: tuple[type[Exception], ...] = (UnicodeEncodeError, psycopg.DataError)

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw
        self.head: psycopg.Cursor[Any] | None = None
        """The chain's ends as the write transaction's first round trip read them, once the lock was held."""
        self.ready = False
        """Whether the ledger's schema is known to be there and readable, so its head can be read at `begin`."""
        self._later: list[tuple[str, Sequence[Any]]] = []
        self._checks: dict[int, Callable[[int], Exception]] = {}
        self._mark = 0
        self._transactions = 0
        self.statement: str | None = None
        """The name the head's statement is prepared under in this session, once it is."""
        self._prepared = 0

    def begin(self) -> None:
        """Start a write transaction and take the chain's lock; once the schema is ready, read the chain's ends
        in the same round trip (see `_BEGIN_READING`)."""
        self._transactions += 1
        self._later, self._checks = [], {}
        if not self.ready:
            self.raw.execute(_BEGIN)
            return
        sql = _BEGIN_READING.format(name=self.statement)
        if self.statement is None:
            # Prepared afresh after a rollback: psycopg then deallocates every prepared statement of the session.
            self._prepared += 1
            self.statement = f"planner_mcp_ends_{self._prepared}"
            sql = f"PREPARE {self.statement} AS {_HEAD}; " + _BEGIN_READING.format(name=self.statement)
        cursor = self.raw.execute(sql.encode())
        while cursor.nextset():
            pass  # to the last statement's rows: the chain's ends
        self.head = cursor

    def end(self, *, commit: bool, flush: bool = False) -> None:
        """Commit, in one round trip with the statements run later (prepared, in a pipeline) and, with `flush`,
        the wait for the WAL flush (see `_FLUSH`); or roll back."""
        self.head = None
        later, checks, self._later, self._checks = self._later, self._checks, [], {}
        if not commit:
            self.statement = None
            self.raw.execute("ROLLBACK")
            return
        with self.raw.pipeline():
            cursors = [self.raw.execute(query, parameters, prepare=True) for query, parameters in later]
            self.raw.execute("COMMIT")
            if flush:
                for statement in _FLUSH:
                    self.raw.execute(statement)
        problems = [
            checks[i](cursor.rowcount) for i, cursor in enumerate(cursors) if i in checks and cursor.rowcount != 1
        ]
        if problems:
            raise problems[0]

    def savepoint(self) -> None:
        """Mark the statements queued so far: every write is queued for the commit's round trip (`execute_later`),
        so a write refused before the commit is undone by dropping its statements, at no round trip."""
        self._mark = len(self._later)

    def rollback_to(self) -> None:
        del self._later[self._mark :]
        self._checks = {i: check for i, check in self._checks.items() if i < self._mark}

    def insert(self, sql: str, parameters: Sequence[Any], not_landed: Callable[[int], Exception], /) -> None:
        self._checks[len(self._later)] = not_landed
        self.execute_later(sql, parameters)

    def execute_later(self, sql: str, parameters: Sequence[Any] = (), /) -> None:
        _storable(parameters)  # refused here, as an immediate statement's would be, not at the commit
        self._later.append((_placeheld(sql), parameters))

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        if self.head is not None and sql == _HEAD:  # read already, in the transaction's first round trip
            cursor, self.head = self.head, None
            return cursor
        query = _placeheld(sql)
        # Prepared from the first use: the ledger's statements are few and fixed, and planning the head's, which
        # reads four tables, would cost more than running it, under the chain's lock.
        return self.raw.execute(query, parameters or None, prepare=True)

    def columns(self, table: str) -> set[str]:
        found = self.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
            (SCHEMA, table),
        ).fetchall()
        return {str(name) for (name,) in found}

    def has_table(self, name: str) -> bool:
        found = self.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", (SCHEMA, name)
        ).fetchone()
        return found is not None

    def data_version(self) -> int | None:
        """Which write transaction this is: the chain's head is read once in each (it holds the lock, so no other
        writer moves the head meanwhile), then followed in memory as its own rows are queued."""
        return self._transactions


class PostgresStorage:
    errors: tuple[type[BaseException], ...] = (psycopg.Error,)

    def __init__(self, url: str, *, busy_timeout_s: float = 5.0, synchronous: str = "full") -> None:
        self.url = url
        self.where = redacted(url)
        self._busy_timeout_s = busy_timeout_s
        # The ledger's own durability, whatever the role's or the database's default: `full` waits for the WAL
        # flush at each outcome's commit; `normal` (PLANNER_MCP_LEDGER_SYNC, recorded in the chain) does not.
        self._synchronous_commit = "on" if synchronous == "full" else "off"
        self._schema_due = 0.0

    def guard(self, deadline: float, *, connected: bool) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()  # the database serialises writers itself (the advisory lock)

    def connect(self, deadline: float) -> Conn:
        try:
            conninfo = bounded(self.url, self._busy_timeout_s)
        except (psycopg.Error, ValueError) as exc:  # libpq's words quote the URL, and with it any password
            raise unreadable_url(exc) from None
        try:
            raw = psycopg.connect(conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise from_postgres(self.where, exc) from None
        try:
            # A lock wait ends first, so a lock another session holds is named as such (at equal timeouts the
            # statement's, started earlier, would fire first); the statement timeout bounds anything else.
            lock_ms = int(self._busy_timeout_s * 1000)
            raw.execute(
                f"SET search_path = {SCHEMA}; SET statement_timeout = {2 * lock_ms}; SET lock_timeout = {lock_ms};"
                f" SET idle_in_transaction_session_timeout = 0; SET synchronous_commit = {self._synchronous_commit}"
            )
        except BaseException:
            raw.close()
            raise
        return PostgresConn(raw)

    def prepare(self, conn: Conn) -> list[str]:
        require_privileges(conn, self.where, write=True)
        if not conn.has_table("agent_actions"):
            raise LedgerError(
                f"the database {self.where} has no ledger: run `planner-mcp ledger init` as the role that will own "
                "it (or have a DBA apply `planner-mcp ledger init --print-sql`)"
            )
        cast(PostgresConn, conn).ready = True
        return []  # the schema is made and upgraded by `ledger init`, run by its owner, never by a writer

    def alive(self, conn: Conn) -> bool:
        """An idle connection the server has sent something is, all but always, one it ended (a restart, a
        crash, a terminated session): it is replaced, at the cost of a connect. One poll, no round trip."""
        raw = _raw(conn)
        try:
            poll = select.poll()
            poll.register(raw.pgconn.socket, select.POLLIN)
            return not poll.poll(0)
        except (psycopg.Error, OSError):  # closed, or broken already
            return False

    def begin(self, conn: Conn, deadline: float, *, relaxed: bool) -> None:
        cast(PostgresConn, conn).begin()

    def end(self, conn: Conn, *, commit: bool, relaxed: bool) -> None:
        try:
            cast(PostgresConn, conn).end(commit=commit, flush=not relaxed and self._synchronous_commit == "on")
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.UndefinedFunction) as exc:
            raise LedgerError(
                f"the ledger {self.where} cannot confirm its commits are on disk: this role may not call "
                "pg_logical_emit_message (GRANT EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) "
                f"TO planner_mcp_writer) ({exc.diag.message_primary})",
                "denied",
            ) from exc

    def savepoint(self, conn: Conn) -> None:
        cast(PostgresConn, conn).savepoint()

    def rollback_to(self, conn: Conn) -> None:
        cast(PostgresConn, conn).rollback_to()

    def schema_changed(self, conn: Conn) -> bool:
        """Whether the catalog is due to be compared again: PostgreSQL has no cheap schema cookie, so a running
        server compares it at most every `SCHEMA_RECHECK_S` seconds, inside a write transaction. (Changing the
        schema takes the tables' owner, which a writer is not; an insert that something silences is caught at
        once by its row count, `ledger.append.write_row`.)"""
        return time.monotonic() >= self._schema_due

    def differences(self, conn: Conn) -> list[Difference]:
        found = differences(conn)
        if not found:
            self._schema_due = time.monotonic() + SCHEMA_RECHECK_S
        return found

    def failed(self, exc: BaseException) -> LedgerError:
        return from_postgres(self.where, exc)

    def discard(self, conn: Conn) -> None:
        _raw(conn).close()  # an open transaction rolls back with the connection

    def close(self) -> None:
        pass

    @contextlib.contextmanager
    def snapshot(self, *, privileges: bool = True) -> Iterator[Conn]:
        """`privileges=False` skips the check that the role may read the ledger: for `doctor`, which reports
        exactly what the role lacks rather than stop at the first."""
        conn = self.connect(0.0)
        try:
            _raw(conn).execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            if privileges:
                require_privileges(conn, self.where, write=False)
            yield conn
        except psycopg.Error as exc:
            raise from_postgres(self.where, exc) from exc
        finally:
            _raw(conn).close()

    def recorded_differences(self, conn: Conn) -> list[Difference]:
        return differences(conn)

    def integrity(self, conn: Conn) -> list[str]:
        return []  # PostgreSQL checks its own pages (data checksums, when the cluster has them)


def _raw(conn: Conn) -> psycopg.Connection[Any]:
    return conn.raw  # type: ignore[attr-defined,no-any-return]
