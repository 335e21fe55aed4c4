"""Reading the whole chain in order, for `verify` and `export`, without writing a byte of the ledger.

Rows stream in sequence order (a merge of each table's index, read in pages), so memory stays flat at any
ledger size.
"""

import heapq
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ledger.chain import COLUMNS, TABLES
from ledger.engines import locate
from ledger.queries import Queries
from ledger.storage import Conn, Location, Storage

__all__ = ["PAGE", "ChainRow", "Snapshot", "chained_rows", "chained_tables", "has_table", "read_only", "unchained_rows"]

_T = TypeVar("_T")

PAGE = 2000
"""Rows read per statement and table: memory stays flat at any ledger size, on either engine."""


@dataclass(frozen=True)
class ChainRow:
    table: str
    seq: int
    row: dict[str, Any]
    """Every column of the row as stored, `prev_hash` and `row_hash` included."""

    @property
    def prev_hash(self) -> Any:
        return self.row.get("prev_hash")

    @property
    def row_hash(self) -> Any:
        return self.row.get("row_hash")


def _table_rows(conn: Conn, table: str, after_seq: int, page: int) -> Iterator[tuple[int, int, ChainRow]]:
    """A table's chained rows with seq > `after_seq`, in seq order, read `page` rows at a time.

    In pages, because a PostgreSQL driver fetches a statement's whole result into memory: one statement per table
    would hold the whole ledger. A page ends with every row at its last seq, read on their own: seq is unique in
    each table, but a ledger whose unique index was dropped may hold two rows at one place, and both are read.
    """
    order = TABLES.index(table)
    last = after_seq
    while True:
        batch = _select(conn, table, f"seq > ? ORDER BY seq LIMIT {int(page)}", last)
        full = len(batch) == page
        if full:
            last = batch[-1]["seq"]
            batch = [row for row in batch if row["seq"] != last] + _select(conn, table, "seq = ?", last)
        for row in batch:
            yield row["seq"], order, ChainRow(table, row["seq"], row)
        if not full:
            return


def _select(conn: Conn, table: str, where: str, *parameters: Any) -> list[dict[str, Any]]:
    cursor = conn.execute(f"SELECT * FROM {table} WHERE {where}", parameters)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def chained_rows(conn: Conn, *, after_seq: int = 0, page: int = PAGE) -> Iterator[ChainRow]:
    """Every chained row with seq > `after_seq`, in sequence order (ties, which only tampering makes, by table)."""
    streams = [_table_rows(conn, table, int(after_seq), page) for table in chained_tables(conn)]
    for _, _, row in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
        yield row


def unchained_rows(conn: Conn) -> Iterator[ChainRow]:
    """Rows with no place in the chain: written by something other than the ledger (the seed's own INSERT)."""
    for table in chained_tables(conn):
        for row in _select(conn, table, "seq IS NULL"):
            yield ChainRow(table, row["seq"], row)


def chained_tables(conn: Conn) -> list[str]:
    """The chained tables this ledger has: one written by an older version may lack the newer ones."""
    return [table for table in TABLES if _has_chain(conn, table)]


def has_table(conn: Conn, name: str) -> bool:
    """Whether the ledger has the table `name` (one an older version wrote may lack it)."""
    return conn.has_table(name)


def _has_chain(conn: Conn, table: str) -> bool:
    return set(COLUMNS[table]) | {"prev_hash", "row_hash"} <= conn.columns(table)


def read_only(location: Location) -> AbstractContextManager[Conn]:
    """A read-only connection to the ledger at `location`, holding one snapshot (see `Storage.snapshot`)."""
    return locate(location).snapshot()


class Snapshot(Queries):
    """The ledger's queries on a read-only connection: for commands that must neither write nor repair."""

    def __init__(self, location: Location | Storage) -> None:
        self._storage = locate(location) if isinstance(location, Path | str) else location

    def _read(self, work: Callable[[Conn], _T]) -> _T:
        with self._storage.snapshot() as conn:
            return work(conn)
