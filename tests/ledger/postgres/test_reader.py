"""The chain is read in pages on either engine, so reading a fleet's ledger does not hold it in memory, and a page
boundary loses nothing: not even a second row an attacker put at a place already taken."""

import sqlite3
from pathlib import Path

import pytest

pytest.importorskip("psycopg", reason="psycopg is not installed: install the postgres extra")

from ledger import Ledger
from ledger.postgres.init import initialise
from ledger.reader import chained_rows, read_only
from ledger.storage import Location
from tests.ledger.postgres.conftest import dbname
from tests.postgres_cluster import PostgresCluster

_DUPLICATE = (
    "INSERT INTO ledger_events (id, seq, timestamp, kind, detail, prev_hash, row_hash)"
    " VALUES (99, 3, '2026-12-06T00:00:00.000Z', 'note', 'a second row at seq 3', 'x', 'y')"
)


def _written(location: Location) -> None:
    ledger = Ledger(location)
    for n in range(7):
        ledger.record_event("note", f"event {n}")
    ledger.close()


def _read(location: Location, page: int) -> list[tuple[str, int, int]]:
    with read_only(location) as conn:
        return [(row.table, row.seq, row.row["id"]) for row in chained_rows(conn, page=page)]


def _sqlite_ledger(tmp_path: Path) -> Location:
    path = tmp_path / "ledger.db"
    _written(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP INDEX ledger_events_by_seq")
    conn.execute(_DUPLICATE)
    conn.close()
    return path


def _postgres_ledger(cluster: PostgresCluster, url: str) -> Location:
    initialise(url)
    _written(url)
    with cluster.connect(dbname(url)) as conn:
        conn.execute("SET search_path = planner_mcp; DROP INDEX ledger_events_by_seq")
        conn.execute(_DUPLICATE.encode())
    return url


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_rows_read_in_pages_are_every_row_in_order_even_two_at_one_place(
    request: pytest.FixtureRequest, tmp_path: Path, engine: str
) -> None:
    if engine == "sqlite":
        location = _sqlite_ledger(tmp_path)
    else:
        location = _postgres_ledger(request.getfixturevalue("pg_cluster"), request.getfixturevalue("pg_database"))
    whole = _read(location, page=1000)
    assert [seq for _, seq, _ in whole] == sorted([*range(1, len(whole)), 3])
    assert {row_id for _, seq, row_id in whole if seq == 3} == {3, 99}
    for page in (1, 2, 3, 4):  # page 3 ends at seq 3, where the two rows are
        assert sorted(_read(location, page=page)) == sorted(whole), page
        assert [seq for _, seq, _ in _read(location, page=page)] == [seq for _, seq, _ in whole]
