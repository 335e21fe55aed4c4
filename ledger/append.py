"""Appending one row to the chain, inside a write transaction the caller already holds.

The caller must hold the ledger's write transaction (`Storage.begin`: SQLite's `BEGIN IMMEDIATE`, PostgreSQL's
advisory lock on the chain) before calling: the head read here is then the head the row is written after,
even with other processes appending to the same ledger.
"""

import functools
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ledger.chain import COLUMNS, GENESIS, TABLES, Hasher, algorithm, storage_problems, typed
from ledger.errors import LedgerError
from ledger.storage import Conn

__all__ = [
    "Head", "Position", "Tail", "append", "check_head", "ends", "ends_query", "hash_at", "head", "head_row",
    "keyed_since", "write_row",
]  # fmt: skip


def _statement(table: str) -> str:
    # The columns in the order `typed` gives them (sorted), so its values are the statement's parameters.
    names = [*sorted(COLUMNS[table]), "prev_hash", "row_hash"]
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


_INSERT = {table: _statement(table) for table in TABLES}


class Head(NamedTuple):
    seq: int
    hash: str
    table: str | None


class Position(NamedTuple):
    id: int
    seq: int


class Tail:
    """Where this connection's last append left the chain, to skip looking the head up again.

    Valid only while no other connection has written: SQLite's `data_version` changes for a connection
    exactly when another one commits, so it is read inside each write transaction and a change means the
    head is looked up afresh (PostgreSQL has no such number: there, the head is read in every transaction).
    Forget it whenever a transaction does not commit; restore it (`mark`, `restore`) with a savepoint rolled back to.
    """

    def __init__(self) -> None:
        self._version: int | None = None
        self._head: Head | None = None
        self._next_ids: dict[str, int] = {}

    def forget(self) -> None:
        self._version, self._head, self._next_ids = None, None, {}

    def mark(self) -> tuple[int | None, Head | None, dict[str, int]]:
        """Where the chain is now, to `restore` when the appends that follow are rolled back to a savepoint."""
        return self._version, self._head, dict(self._next_ids)

    def restore(self, mark: tuple[int | None, Head | None, dict[str, int]]) -> None:
        self._version, self._head, self._next_ids = mark[0], mark[1], dict(mark[2])

    def current(self, conn: Conn) -> Head:
        version = conn.data_version()
        if version is None or version != self._version or self._head is None:
            self.forget()
            self._version = version
            self._head, self._next_ids = ends(conn)
        return self._head

    def next_id(self, conn: Conn, table: str) -> int:
        if table not in self._next_ids:
            self._next_ids[table] = conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()[0]
        return self._next_ids[table]

    def moved(self, at: Head, table: str, row_id: int) -> None:
        self._head = at
        self._next_ids[table] = row_id + 1


@functools.cache
def ends_query(tables: tuple[str, ...] = TABLES) -> str:
    """The statement `ends` runs: the newest seq and hash, and the largest id, of each table."""
    return " UNION ALL ".join(
        f"SELECT '{table}', (SELECT seq FROM {table} WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1),"
        f" (SELECT row_hash FROM {table} WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1),"
        f" (SELECT max(id) FROM {table})"
        for table in tables
    )


def ends(conn: Conn, tables: Sequence[str] = TABLES) -> tuple[Head, dict[str, int]]:
    """The newest chained row and each table's next id, in one statement of index lookups, no scan (one round
    trip to a database server). (`tables`: those a ledger an older version wrote has, for a reader that does
    not upgrade it.)"""
    best = Head(0, GENESIS, None)
    next_ids = {}
    for table, seq, row_hash, max_id in conn.execute(ends_query(tuple(tables))).fetchall():
        next_ids[table] = (max_id or 0) + 1
        if seq is not None and seq > best.seq:
            best = Head(seq, row_hash, table)
    return best, next_ids


def head(conn: Conn, tables: Sequence[str] = TABLES) -> Head:
    """The newest chained row (see `ends`)."""
    return ends(conn, tables)[0]


def head_row(conn: Conn, at: Head) -> dict[str, Any] | None:
    """The head row's hashed columns and its `prev_hash`, to check it before the chain is extended."""
    if at.table is None:
        return None
    names = [*COLUMNS[at.table], "prev_hash"]
    found = conn.execute(f"SELECT {', '.join(names)} FROM {at.table} WHERE seq = ?", (at.seq,)).fetchone()
    return dict(zip(names, found, strict=True)) if found is not None else None


def check_head(conn: Conn, hasher: Hasher, where: object, tables: Sequence[str] = TABLES) -> Head:
    """The head, once its row is shown to match its hash under this hasher; else `LedgerError` naming why.

    One row, not the whole chain (that is `verify`): enough that no process extends an altered chain, a
    keyed chain without its key or with another key, or an unkeyed row forged at the head of a keyed chain.
    """
    at = head(conn, tables)
    row = head_row(conn, at)
    if row is None or at.table is None:
        return at
    if problems := storage_problems(at.table, row):
        raise LedgerError(
            f"the newest row of the ledger {where} (seq {at.seq}) was altered: {problems[0]}; "
            "run `planner-mcp ledger verify`",
            "tampered",
        )
    if algorithm(at.hash) == "sha256" and (keyed_at := keyed_since(conn, tables)) is not None:
        raise LedgerError(
            f"the newest row of the ledger {where} (seq {at.seq}) is not keyed, but the chain is keyed from seq "
            f"{keyed_at}: it was written without the key; run `planner-mcp ledger verify`",
            "tampered",
        )
    matches = hasher.matches(at.hash, at.table, row["prev_hash"], row)
    if matches is None:
        raise LedgerError(f"the ledger {where} is keyed (HMAC): set PLANNER_MCP_LEDGER_KEY_FILE to its key", "key")
    if not matches and algorithm(at.hash) == "hmac-sha256":
        raise LedgerError(
            f"the ledger {where} was keyed with a different key than PLANNER_MCP_LEDGER_KEY_FILE holds (or its "
            "newest row was altered); run `planner-mcp ledger verify`",
            "key",
        )
    if not matches:
        raise LedgerError(
            f"the newest row of the ledger {where} (seq {at.seq}) does not match its hash; "
            "run `planner-mcp ledger verify`",
            "tampered",
        )
    return at


def keyed_since(conn: Conn, tables: Sequence[str] = TABLES) -> int | None:
    """The seq from which the chain is keyed, or None for an unkeyed chain.

    A chain is keyed from its first row when it was created with a key, or from the `chain-keyed` event a
    server with a key records when it first extends an unkeyed chain; both are keyed rows themselves. Two
    lookups, so it can be asked at every open.
    """
    first = hash_at(conn, 1, tables)
    if first is not None and algorithm(first) == "hmac-sha256":
        return 1
    found = conn.execute("SELECT min(seq) FROM ledger_events WHERE kind = 'chain-keyed'").fetchone()
    return None if found is None or found[0] is None else int(found[0])


def hash_at(conn: Conn, seq: int, tables: Sequence[str] = TABLES) -> str | None:
    """The stored hash of the row at `seq`, in whichever table holds it (an index lookup per table)."""
    for table in tables:
        found = conn.execute(f"SELECT row_hash FROM {table} WHERE seq = ?", (seq,)).fetchone()
        if found is not None:
            return str(found[0])
    return None


def append(conn: Conn, hasher: Hasher, table: str, values: Mapping[str, Any], tail: Tail | None = None) -> Position:
    """Write `values` as the next row of the chain; return the row's id and sequence number.

    With `tail`, the head and the next id are remembered between appends on this connection (see `Tail`).
    """
    tail = tail or Tail()
    at = tail.current(conn)
    row_id = tail.next_id(conn, table)
    written = write_row(conn, hasher, table, values, at, row_id)
    tail.moved(written, table, row_id)
    return Position(row_id, written.seq)


def write_row(conn: Conn, hasher: Hasher, table: str, values: Mapping[str, Any], at: Head, row_id: int) -> Head:
    """Insert one row after `at` and prove it is there; return the new head. Raises `LedgerError`.

    The proof is the database's own count of the rows the statement changed (`Conn.insert`): a trigger that
    silences the insert (`RAISE(IGNORE)`, a rule `DO INSTEAD NOTHING`) leaves it at 0, and a call must not cite
    a row that was never written. (Which triggers
    exist is checked against the migrations' schema whenever the schema changes: see `ledger.schema`.)

    A value the database cannot take fails this row alone, before anything is written: text with a lone
    surrogate (JSON allows `\\ud800`, UTF-8 does not), or a NUL that PostgreSQL's text refuses, is kept with
    it escaped; an integer past 64 bits is refused.
    """
    row = {**values, "id": row_id, "seq": at.seq + 1}
    columns, too_large = typed(table, row)
    if too_large:  # either engine's limit
        raise LedgerError(f"a row for {table} holds a number too large to store (past 64 bits)", "value")
    try:
        return _insert(conn, hasher, table, columns, at)
    except conn.unstorable:
        escaped = {k: _escaped(v) if isinstance(v, str) else v for k, v in columns.items()}
        return _insert(conn, hasher, table, escaped, at)


def _insert(conn: Conn, hasher: Hasher, table: str, columns: dict[str, Any], at: Head) -> Head:
    row_hash = hasher.typed_hash(table, at.hash, columns)
    conn.insert(_INSERT[table], [*columns.values(), at.hash, row_hash], functools.partial(_not_landed, table))
    return Head(at.seq + 1, row_hash, table)


def _not_landed(table: str, changed: int) -> LedgerError:
    return LedgerError(
        f"a row written to {table} did not land ({changed} rows changed): something in the ledger silences its "
        "inserts; run `planner-mcp ledger verify`",
        "tampered",
    )


def _escaped(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")
