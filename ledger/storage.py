"""Where the ledger's rows live: one interface over SQLite (a file, the default) and PostgreSQL (a fleet's).

Everything the ledger decides (the chain, its encoding, intents before reads, outcomes before replies,
budgets, metrics, verify) is written once against `Conn` and runs unchanged on either engine; a `Storage`
holds only what differs: how a connection is opened and checked, how a write transaction takes the chain's
head for itself, what the engine's errors mean, and how its schema is compared with the one the ledger made.

The shared SQL keeps to what both engines read alike: `?` placeholders (the PostgreSQL connection rewrites
them), no engine-specific functions, and every sum cast to an integer.
"""

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from ledger.chain import TABLES
from ledger.errors import LedgerError

__all__ = ["APPEND_ONLY", "Conn", "Difference", "Location", "Storage", "describe", "is_postgres_url"]

Location = Path | str
"""A ledger's place: a SQLite file's path, or a `postgresql://` URL."""

_SCHEMES = ("postgresql://", "postgres://")


APPEND_ONLY = {
    f"{table}_no_{verb}": (table, verb.upper()) for table in TABLES for verb in ("update", "delete", "truncate")
}
"""The triggers that refuse UPDATE and DELETE (and, on PostgreSQL, TRUNCATE) on the chained tables, by name:
(table, verb)."""


class Difference(NamedTuple):
    """One way a ledger's schema differs from the one planner-mcp makes: `name` of the object, and what is wrong
    with it, in words."""

    name: str
    problem: str

    @property
    def unprotects(self) -> bool:
        """Whether it takes away an append-only trigger (as dropping one does)."""
        return self.name in APPEND_ONLY


class Conn(Protocol):
    """A connection as the ledger's shared code uses it."""

    unstorable: tuple[type[Exception], ...]
    """Errors that mean one value cannot be stored as given, raised before anything reached the database."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any: ...
    def insert(self, sql: str, parameters: Sequence[Any], not_landed: Callable[[int], Exception], /) -> None:
        """Insert one row, and raise `not_landed(rows changed)` unless exactly one was: at once on SQLite; on
        PostgreSQL with the transaction's commit, whose round trip carries it (the transaction holds the chain's
        lock, so nothing it reads depends on it), and then before anything cites the row."""
        ...

    def execute_later(self, sql: str, parameters: Sequence[Any] = (), /) -> None:
        """Run a statement whose result nobody reads as part of the transaction's commit: at once on SQLite, in
        the commit's own round trip on PostgreSQL. If it fails, the commit fails and nothing is committed."""
        ...

    def columns(self, table: str) -> set[str]: ...
    def has_table(self, name: str) -> bool: ...
    def data_version(self) -> int | None:
        """A number that changes whenever the chain's head may have moved under this connection: when another
        connection commits (SQLite's `data_version`), or with each write transaction (PostgreSQL, which cannot
        tell, and reads the head in the transaction's first round trip anyway). None: never trust a cached head."""
        ...


class Storage(Protocol):
    """One engine's part of the ledger. `where` names the ledger in messages (never with a password)."""

    where: str
    errors: tuple[type[BaseException], ...]
    """The driver's own errors, which `failed` turns into a `LedgerError` naming the cause."""

    # -- writing ------------------------------------------------------------------------------------
    def guard(self, deadline: float, *, connected: bool) -> AbstractContextManager[None]: ...
    def connect(self, deadline: float) -> Conn: ...
    def alive(self, conn: Conn) -> bool:
        """Whether an idle connection is still open at the database's end; one that is not is replaced before
        the next operation, so a database that restarted between two calls costs neither of them."""
        ...

    def prepare(self, conn: Conn) -> list[str]:
        """Inside the opening write transaction: bring the schema up to date where this engine may (return the
        migrations applied), or refuse a database that has no ledger yet."""
        ...

    def begin(self, conn: Conn, deadline: float, *, relaxed: bool) -> None:
        """Start a write transaction that owns the chain's head until it ends. `relaxed`: its commit need not
        wait for the disk (the call's outcome, which does, follows)."""
        ...

    def end(self, conn: Conn, *, commit: bool, relaxed: bool) -> None: ...
    def savepoint(self, conn: Conn) -> None:
        """Inside a write transaction: mark where it stands, before one of the writes a group commit shares it with
        (see `ledger.group`). Each marks anew, nested in the last; the commit keeps them all."""
        ...

    def rollback_to(self, conn: Conn) -> None:
        """Undo what the transaction wrote since the last `savepoint`, and carry on with it."""
        ...

    def schema_changed(self, conn: Conn) -> bool: ...
    def differences(self, conn: Conn) -> list[Difference]: ...
    def failed(self, exc: BaseException) -> LedgerError: ...
    def discard(self, conn: Conn) -> None: ...
    def close(self) -> None: ...

    # -- reading ------------------------------------------------------------------------------------
    def snapshot(self) -> AbstractContextManager[Conn]:
        """A read-only connection holding one consistent snapshot: rows appended meanwhile are not read."""
        ...

    def recorded_differences(self, conn: Conn) -> list[Difference]:
        """The schema against what this ledger records it should be, for readers that upgrade nothing."""
        ...

    def integrity(self, conn: Conn) -> list[str]:
        """The engine's own check of the stored bytes: each problem, or nothing when it has none to run."""
        ...


def is_postgres_url(location: Location) -> bool:
    return isinstance(location, str) and location.startswith(_SCHEMES)


def describe(location: Location) -> str:
    """The ledger's place for messages: a URL shown without its password."""
    if is_postgres_url(location):
        from ledger.postgres.urls import redacted

        return redacted(str(location))
    return str(location)
