"""The schema the migrations make, and what a ledger's own schema says against it.

Someone who can write the file can add a trigger that silences every insert (`RAISE(IGNORE)`), keep the
append-only triggers' names over bodies that do nothing, or hang a view or an index off a table. None of
that changes a hash, so the chain cannot show it: the schema itself is compared, object by object and
statement by statement, with the one the migrations make on an empty database. The server refuses a
ledger whose schema differs; `verify` names each difference.
"""

import functools
import sqlite3
from collections.abc import Iterator

from ledger.connection import SqliteConn
from ledger.migrations import MIGRATIONS, migrate
from ledger.storage import APPEND_ONLY, Difference

__all__ = ["APPEND_ONLY", "Difference", "differences", "expected", "recorded_differences"]

_Objects = dict[str, tuple[str, str, str | None]]  # name: (type, table, sql)


@functools.cache
def expected(applied: frozenset[str] | None = None) -> _Objects:
    """The objects the migrations make (those `applied`, when given), read from an empty in-memory database
    migrated once per process."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.execute("BEGIN")
        migrate(conn, applied)
        conn.execute("COMMIT")
        return _objects(conn)
    finally:
        conn.close()


def _objects(conn: sqlite3.Connection) -> _Objects:
    found = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    return {name: (kind, table, sql) for kind, name, table, sql in found}


def differences(conn: sqlite3.Connection, *, applied: frozenset[str] | None = None) -> list[Difference]:
    """Every object that is missing, added or changed against `expected(applied)`, in a stable order.

    The server compares a ledger it has just brought up to date with every migration; `verify`, which writes
    nothing, compares one an older version wrote with the migrations it records as applied.
    """
    return sorted(_differences(_objects(conn), expected(applied)))


def recorded_differences(conn: SqliteConn) -> list[Difference]:
    """`differences` against the migrations the ledger records as applied: for readers that write nothing
    (`verify`, `doctor`), which may be handed a ledger an older version wrote and has not upgraded."""
    recorded = conn.execute("SELECT name FROM _migrations") if conn.has_table("_migrations") else []
    names = [name for (name,) in recorded]
    known = [fn.__name__ for fn in MIGRATIONS]
    if set(names) != set(known[: len(names)]):
        unknown = ", ".join(sorted(set(names) - set(known))) or "none"
        return [Difference("_migrations", f"the migrations it records are not ones this version makes, in order "
                           f"(unknown: {unknown}): written by a newer planner-mcp, or edited")]  # fmt: skip
    return differences(conn, applied=frozenset(names))


def _differences(found: _Objects, wanted: _Objects) -> Iterator[Difference]:
    for name, (kind, table, sql) in found.items():
        if name not in wanted:
            yield Difference(name, f"{kind} {name} on {table} is not the ledger's: {_shown(sql)}")
        elif (kind, table, sql) != wanted[name]:
            yield Difference(name, f"{kind} {name} was changed: it reads {_shown(sql)}")
    for name, (kind, table, _) in wanted.items():
        if name not in found:
            yield Difference(name, f"{kind} {name} on {table} was removed")


def _shown(sql: str | None, limit: int = 200) -> str:
    text = " ".join((sql or "(no SQL)").split())
    return text if len(text) <= limit else text[:limit] + "..."
