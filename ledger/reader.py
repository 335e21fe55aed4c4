"""Reading the whole chain in order, for `verify` and `export`, without writing a byte of the file.

Rows stream in sequence order (a merge of each table's index), so memory stays flat at any ledger size.
"""

import heapq
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ledger.chain import COLUMNS, TABLES
from ledger.errors import LedgerError, from_sqlite
from ledger.queries import Queries

__all__ = ["ChainRow", "Snapshot", "chained_rows", "chained_tables", "has_table", "read_only", "unchained_rows"]

_T = TypeVar("_T")


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


@contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection holding one snapshot: rows appended meanwhile are not part of what is read.

    The file is named by a URI built from the whole path, percent-encoded: a `#` or `?` in a name pasted into
    `file:{path}` would cut it, and SQLite would open (and create, read-write) another file.
    """
    if not path.is_file():
        raise LedgerError(f"there is no ledger at {path} (PLANNER_MCP_LEDGER)")
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise from_sqlite(path, exc) from exc
    try:
        conn.execute("BEGIN")
        yield conn
    except sqlite3.Error as exc:
        raise from_sqlite(path, exc) from exc
    finally:
        conn.close()


def _table_rows(conn: sqlite3.Connection, table: str, where: str) -> Iterator[tuple[int, int, ChainRow]]:
    cursor = conn.execute(f"SELECT * FROM {table} WHERE {where}")
    names = [d[0] for d in cursor.description]
    order = TABLES.index(table)
    for values in cursor:
        row = dict(zip(names, values, strict=True))
        yield row["seq"], order, ChainRow(table, row["seq"], row)


def chained_rows(conn: sqlite3.Connection, *, after_seq: int = 0) -> Iterator[ChainRow]:
    """Every chained row with seq > `after_seq`, in sequence order (ties, which only tampering makes, by table)."""
    streams = [_table_rows(conn, table, f"seq > {int(after_seq)} ORDER BY seq") for table in chained_tables(conn)]
    for _, _, row in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
        yield row


def unchained_rows(conn: sqlite3.Connection) -> Iterator[ChainRow]:
    """Rows with no place in the chain: written by something other than the ledger (the seed's own INSERT)."""
    for table in chained_tables(conn):
        for _, _, row in _table_rows(conn, table, "seq IS NULL"):
            yield row


def chained_tables(conn: sqlite3.Connection) -> list[str]:
    """The chained tables this ledger has: one written by an older version may lack the newer ones."""
    return [table for table in TABLES if _has_chain(conn, table)]


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the ledger has the table `name` (one an older version wrote may lack it)."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _has_chain(conn: sqlite3.Connection, table: str) -> bool:
    columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    return set(COLUMNS[table]) | {"prev_hash", "row_hash"} <= columns


class Snapshot(Queries):
    """The ledger's queries on a read-only connection: for commands that must neither write nor repair."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        with read_only(self.path) as conn:
            return work(conn)
