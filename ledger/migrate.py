"""`planner-mcp ledger migrate`: a ledger's whole chain copied, as stored, into an empty ledger elsewhere.

Nothing is recomputed: every chained row keeps its id, seq, prev_hash and row_hash, so the copy hashes as the
original does, a keyed chain stays keyed by the same key (which the copy never needs), and `verify` there
finds the same head. The source is verified first, and only what was verified is copied. The copy is one
transaction under the chain's write lock (`Storage.begin`): a server that starts on the target meanwhile waits
for it, then extends the copied chain; a copy that fails leaves the target as empty as it was.

Written against `Conn` and `Storage` alone: the command copies a SQLite file into PostgreSQL, but nothing here
knows which engine is which.
"""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ledger.chain import GENESIS, TABLES
from ledger.errors import LedgerError
from ledger.reader import ChainRow, chained_rows, has_table
from ledger.storage import Conn, Storage
from ledger.verify import Report, verify

__all__ = ["METRICS", "Migrated", "Progress", "migrate"]

METRICS = "agent_metrics"
"""The one table outside the chain that is copied too: the seed's counters, which `verify` checks against it."""

Progress = Callable[[int, int], None]
"""Told (rows copied, rows to copy) as the copy goes."""

_PROGRESS_EVERY = 1000


@dataclass(frozen=True)
class Migrated:
    """What was copied: the chain's rows up to its head, and the counters."""

    rows: int
    metrics: int
    head_seq: int
    head_hash: str
    source: str
    target: str


def migrate(
    source: Storage, target: Storage, *, key: bytes | None = None, progress: Progress | None = None,
    busy_timeout_s: float = 5.0,
) -> Migrated:  # fmt: skip
    """Copy the ledger `source` into the empty ledger `target`; raises `LedgerError` naming why not.

    Refused: a source `verify` finds tampered (or keyed rows it cannot check without `key`), a target with no
    ledger, with a schema that is not the ledger's, or with any row; a row the target cannot store as it is
    (PostgreSQL's text holds no NUL), since storing it otherwise would change its hash.
    """
    report = verify(source, key=key)
    _refuse_unsound(report, source.where)
    deadline = time.monotonic() + busy_timeout_s
    with target.guard(deadline, connected=False):
        conn = target.connect(deadline)
        try:
            target.begin(conn, deadline, relaxed=False)
            _refuse_target(target, conn)
            with source.snapshot() as read:
                _copy_chain(read, conn, report, progress)
                metrics = _copy_metrics(read, conn)
            target.end(conn, commit=True, relaxed=False)
        except target.errors as exc:
            raise target.failed(exc) from exc
        finally:
            target.discard(conn)  # after a commit, only closes; otherwise rolls everything back
            target.close()
    return Migrated(report.rows, metrics, report.head_seq, report.head_hash, source.where, target.where)


def _refuse_unsound(report: Report, where: str) -> None:
    if report.status == "tampered":
        shown = "; ".join(str(f) for f in report.findings if f.kind not in ("incomplete", "unverified"))
        raise LedgerError(
            f"the ledger {where} is not intact, so it is not migrated: {_shortened(shown)}; "
            "`planner-mcp ledger verify` names every finding",
            "tampered",
        )
    if report.status == "unverified":
        raise LedgerError(
            f"the ledger {where} has keyed rows that cannot be verified without the key: set "
            "PLANNER_MCP_LEDGER_KEY_FILE to its key, so that only a verified chain is migrated",
            "key",
        )


def _refuse_target(target: Storage, conn: Conn) -> None:
    target.prepare(conn)  # a database with no ledger is refused here, with what to run
    if found := target.differences(conn):
        raise LedgerError(
            f"the schema of {target.where} is not the one planner-mcp made: {found[0].problem}; "
            "migrate only into a ledger `planner-mcp ledger init` made",
            "tampered",
        )
    held = [f"{table} ({count})" for table, count in _counts(conn) if count]
    if held:
        raise LedgerError(
            f"the ledger {target.where} is not empty: it holds rows in {', '.join(held)}; migrate only into a "
            "ledger that has never been written (a fresh database, then `planner-mcp ledger init`)"
        )


def _counts(conn: Conn) -> Iterator[tuple[str, int]]:
    for table in (*TABLES, METRICS):
        yield table, int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _copy_chain(read: Conn, conn: Conn, report: Report, progress: Progress | None) -> None:
    """Every chained row up to the verified head, in seq order; the source must not have moved since."""
    copied, last = 0, None
    columns = {table: conn.columns(table) for table in TABLES}
    for row in chained_rows(read):
        if row.seq > report.head_seq:
            raise LedgerError(_MOVED.format(where=report.path))
        _insert(conn, row.table, row.row, columns[row.table], f"seq {row.seq} ({row.table} id {row.row.get('id')})")
        copied, last = copied + 1, row
        if progress is not None and copied % _PROGRESS_EVERY == 0:
            progress(copied, report.rows)
    if copied != report.rows or _hash(last) != report.head_hash:
        raise LedgerError(_MOVED.format(where=report.path))
    if progress is not None:
        progress(copied, report.rows)


_MOVED = (
    "the ledger {where} changed while it was being migrated: stop the servers that write it, then run "
    "the migration again (nothing was migrated)"
)


def _hash(row: ChainRow | None) -> Any:
    return GENESIS if row is None else row.row_hash


def _copy_metrics(read: Conn, conn: Conn) -> int:
    if not has_table(read, METRICS):
        return 0
    columns = conn.columns(METRICS)
    cursor = read.execute(f"SELECT * FROM {METRICS} ORDER BY agent_id")
    names = [d[0] for d in cursor.description]
    copied = 0
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        _insert(conn, METRICS, row, columns, f"{METRICS} of agent {row.get('agent_id')!r}")
        copied += 1
    return copied


def _insert(conn: Conn, table: str, row: dict[str, Any], columns: set[str], which: str) -> None:
    """One row exactly as stored; refused, naming it, when the target cannot hold a value as it is."""
    if extra := sorted(set(row) - columns):
        raise LedgerError(f"{which} has columns the target's {table} lacks ({', '.join(extra)}): nothing was migrated")
    names = list(row)
    statement = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    try:
        cursor = conn.execute(statement, [row[name] for name in names])
    except conn.unstorable as exc:
        raise LedgerError(
            f"{which} holds a value the target cannot store as it is ({exc}); storing it otherwise would change "
            "its hash, so nothing was migrated",
            "value",
        ) from None
    if cursor.rowcount != 1:
        raise LedgerError(f"{which} did not land in the target ({cursor.rowcount} rows changed): nothing was migrated",
                          "tampered")  # fmt: skip


def _shortened(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
