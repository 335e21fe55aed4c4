"""Appending one row to the chain, inside a write transaction the caller already holds.

The caller must have taken the write lock (`BEGIN IMMEDIATE`) before calling: the head read here is then
the head the row is written after, even with other processes appending to the same file.
"""

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from ledger.chain import COLUMNS, GENESIS, TABLES, Hasher, algorithm
from ledger.errors import LedgerError

__all__ = ["Head", "Position", "Tail", "append", "check_head", "head", "head_row"]


def _insert(table: str) -> str:
    names = [*COLUMNS[table], "prev_hash", "row_hash"]
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


_INSERT = {table: _insert(table) for table in TABLES}


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
    head is looked up afresh. Forget it whenever a transaction does not commit.
    """

    def __init__(self) -> None:
        self._version: int | None = None
        self._head: Head | None = None
        self._next_ids: dict[str, int] = {}

    def forget(self) -> None:
        self._version, self._head, self._next_ids = None, None, {}

    def current(self, conn: sqlite3.Connection) -> Head:
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version or self._head is None:
            self.forget()
            self._version, self._head = version, head(conn)
        return self._head

    def next_id(self, conn: sqlite3.Connection, table: str) -> int:
        if table not in self._next_ids:
            self._next_ids[table] = conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()[0]
        return self._next_ids[table]

    def moved(self, at: Head, table: str, row_id: int) -> None:
        self._head = at
        self._next_ids[table] = row_id + 1


def head(conn: sqlite3.Connection) -> Head:
    """The newest chained row: one index lookup per table, no scan."""
    best = Head(0, GENESIS, None)
    for table in TABLES:
        found = conn.execute(
            f"SELECT seq, row_hash FROM {table} WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if found is not None and found[0] > best.seq:
            best = Head(found[0], found[1], table)
    return best


def head_row(conn: sqlite3.Connection, at: Head) -> dict[str, Any] | None:
    """The head row's hashed columns and its `prev_hash`, to check it before the chain is extended."""
    if at.table is None:
        return None
    names = [*COLUMNS[at.table], "prev_hash"]
    found = conn.execute(f"SELECT {', '.join(names)} FROM {at.table} WHERE seq = ?", (at.seq,)).fetchone()
    return dict(zip(names, found, strict=True)) if found is not None else None


def check_head(conn: sqlite3.Connection, hasher: Hasher, path: Path) -> Head:
    """The head, once its row is shown to match its hash under this hasher; else `LedgerError` naming why.

    One row, not the whole chain (that is `verify`): enough that no process extends an altered chain, or a
    keyed chain without its key, or with another key.
    """
    at = head(conn)
    row = head_row(conn, at)
    if row is None or at.table is None:
        return at
    matches = hasher.matches(at.hash, at.table, row["prev_hash"], row)
    if matches is None:
        raise LedgerError(f"the ledger {path} is keyed (HMAC): set PLANNER_MCP_LEDGER_KEY_FILE to its key", "key")
    if not matches and algorithm(at.hash) == "hmac-sha256":
        raise LedgerError(
            f"the ledger {path} was keyed with a different key than PLANNER_MCP_LEDGER_KEY_FILE holds (or its "
            "newest row was altered); run `planner-mcp ledger verify`",
            "key",
        )
    if not matches:
        raise LedgerError(
            f"the newest row of the ledger {path} (seq {at.seq}) does not match its hash; "
            "run `planner-mcp ledger verify`",
            "tampered",
        )
    return at


def append(
    conn: sqlite3.Connection, hasher: Hasher, table: str, values: Mapping[str, Any], tail: Tail | None = None
) -> Position:
    """Write `values` as the next row of the chain; return the row's id and sequence number.

    With `tail`, the head and the next id are remembered between appends on this connection (see `Tail`).
    """
    tail = tail or Tail()
    at = tail.current(conn)
    row_id = tail.next_id(conn, table)
    row = {**values, "id": row_id, "seq": at.seq + 1}
    row_hash = hasher.row_hash(table, at.hash, row)
    conn.execute(_INSERT[table], [row.get(name) for name in COLUMNS[table]] + [at.hash, row_hash])
    tail.moved(Head(at.seq + 1, row_hash, table), table, row_id)
    return Position(row_id, at.seq + 1)
