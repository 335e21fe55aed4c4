"""A row's hash does not depend on where it is stored: the same records give the same chain on either engine.

Each record is appended by the ledger's own `append` to an empty SQLite ledger and an empty PostgreSQL ledger,
and read back by `verify`, which re-derives every hash from what the engine hands back. Values at the edges of
what either stores: unicode beyond the BMP, a lone surrogate (JSON allows it, UTF-8 does not: kept escaped, alike
on both), integers at the ends of 64 bits, floats at the ends of a double.

One value differs by design: PostgreSQL's text cannot hold a NUL, so the ledger stores it escaped there (`\\x00`,
see `ledger.append`), where SQLite keeps the NUL itself. That row's stored text, its hash, and so the hash of every
row chained after it, differ between the engines; each chain still verifies on its own engine.
"""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest

pytest.importorskip("psycopg", reason="psycopg is not installed: install the postgres extra")


from ledger import LedgerError, verify
from ledger.append import Tail, append
from ledger.chain import COLUMNS, TABLES, Hasher
from ledger.connection import SqliteConn
from ledger.migrations import migrate
from ledger.postgres.init import initialise
from ledger.storage import Conn
from tests.conftest import recount_metrics
from tests.ledger.postgres.conftest import ledger_conn

_AT = "2026-12-06T00:00:00.000Z"
_LARGEST, _SMALLEST = 2**63 - 1, -(2**63)

RECORDS: list[tuple[str, dict[str, Any]]] = [
    ("ledger_events", {"timestamp": _AT, "kind": "note", "detail": "héllo wörld, 世界, 🎉 emoji, zero\u200bwidth"}),
    ("call_intents", {
        "timestamp": _AT, "request_id": "r1", "client_request_id": "ünïcode-🆔", "agent_id": "llm-planner-001",
        "agent_version": "0.1.0", "tier": _LARGEST, "action": "read_docs",
        "arguments": '{"n": 9223372036854775807, "name": "e\\u0301"}', "tools_digest": "d", "notes": "e\u0301 combined",
    }),
    ("agent_actions", {
        "timestamp": _AT, "agent_id": "llm-planner-001", "agent_version": "0.1.0", "tier": _SMALLEST,
        "action": "read_docs", "decision": "EXECUTE", "confidence": 0.1 + 0.2, "success": 1, "error_type": None,
        "error_message": "a lone \ud800 surrogate", "request_id": "r1", "client_request_id": None, "intent_id": 1,
        "refused": 0, "duration_ms": 5e-324, "arguments": "{}", "output_digest": None, "llm_model": "mödel",
        "prompt_tokens": _LARGEST, "completion_tokens": _SMALLEST, "tools_digest": "d", "notes": "",
    }),
    ("token_reservations", {
        "timestamp": _AT, "request_id": "r1", "agent_id": "llm-planner-001", "day": "2026-12-06",
        "tokens": _LARGEST, "stage": "intent",
    }),
    ("agent_actions", {
        "timestamp": _AT, "agent_id": "llm-planner-001", "agent_version": "0.1.0", "tier": 0, "action": "list_docs",
        "decision": "ERROR", "confidence": 1.7976931348623157e308, "success": 0, "error_type": "X",
        "error_message": None, "request_id": "r2", "client_request_id": None, "intent_id": None, "refused": 1,
        "duration_ms": 1 / 3, "arguments": "{}", "output_digest": None, "llm_model": None, "prompt_tokens": None,
        "completion_tokens": None, "tools_digest": "d", "notes": "",
    }),
    ("ledger_events", {"timestamp": _AT, "kind": "note", "detail": "before\x00after"}),
]  # fmt: skip
_NUL_AT = len(RECORDS)  # the NUL is in the last record: every row before it is chained alike on both engines


@contextmanager
def _sqlite(path: Path) -> Iterator[Conn]:
    conn = sqlite3.connect(path, isolation_level=None, factory=SqliteConn)
    try:
        conn.execute("BEGIN IMMEDIATE")
        migrate(conn)  # the schema alone: no `schema created` event, so both chains start at the same row
        yield conn
        conn.execute("COMMIT")
    finally:
        conn.close()


@contextmanager
def _postgres(url: str) -> Iterator[Conn]:
    """One write transaction as a server's: its inserts travel with its commit (`PostgresConn.insert`)."""
    with ledger_conn(url) as conn:
        conn.begin()
        yield conn
        conn.end(commit=True)


def _write(conn: Conn) -> None:
    tail = Tail()
    for table, values in RECORDS:
        append(conn, Hasher(), table, values, tail)


def _recount(conn: Conn) -> None:
    recount_metrics(cast(sqlite3.Connection, conn))  # agent_metrics, kept outside the chain, as a server keeps it


def _stored(conn: Conn) -> list[dict[str, Any]]:
    """Every chained row as the engine hands it back, in chain order."""
    found: list[dict[str, Any]] = []
    for table in TABLES:
        names = [*COLUMNS[table], "prev_hash", "row_hash"]
        rows = conn.execute(f"SELECT {', '.join(names)} FROM {table}").fetchall()
        found.extend({"table": table, **dict(zip(names, values, strict=True))} for values in rows)
    return sorted(found, key=lambda row: row["seq"])


@pytest.fixture
def both(tmp_path: Path, pg_database: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Path, str]:
    path = tmp_path / "ledger.db"
    initialise(pg_database)  # written as its owner, who may also recount agent_metrics
    pg_ledger = pg_database
    with _sqlite(path) as conn:
        _write(conn)
        _recount(conn)
        on_sqlite = _stored(conn)
    with _postgres(pg_ledger) as conn:
        _write(conn)
    with _postgres(pg_ledger) as conn:  # the rows a transaction inserts land with its commit
        _recount(conn)
    with ledger_conn(pg_ledger) as conn:
        on_postgres = _stored(conn)
    return on_sqlite, on_postgres, path, pg_ledger


def test_the_same_records_give_byte_identical_rows_and_hashes_on_both_engines(
    both: tuple[list[dict[str, Any]], list[dict[str, Any]], Path, str],
) -> None:
    on_sqlite, on_postgres, _, _ = both
    assert len(on_sqlite) == len(on_postgres) == len(RECORDS)
    before_nul = _NUL_AT - 1
    assert on_sqlite[:before_nul] == on_postgres[:before_nul]  # every value, every link, every hash
    for sqlite_row, postgres_row in zip(on_sqlite, on_postgres, strict=True):
        for name, value in sqlite_row.items():  # the same Python types too (== holds between 1 and 1.0)
            assert type(value) is type(postgres_row[name]), (sqlite_row["seq"], name)
    assert on_sqlite[2]["error_message"] == "a lone \\ud800 surrogate"  # escaped, alike on both
    assert on_sqlite[2]["prompt_tokens"] == _LARGEST and on_sqlite[2]["completion_tokens"] == _SMALLEST


def test_a_nul_is_kept_by_sqlite_and_escaped_by_postgresql_and_each_chain_verifies(
    both: tuple[list[dict[str, Any]], list[dict[str, Any]], Path, str],
) -> None:
    on_sqlite, on_postgres, path, url = both
    assert on_sqlite[-1]["detail"] == "before\x00after"
    assert on_postgres[-1]["detail"] == "before\\x00after"
    assert on_sqlite[-1]["prev_hash"] == on_postgres[-1]["prev_hash"]
    assert on_sqlite[-1]["row_hash"] != on_postgres[-1]["row_hash"]
    for report in (verify(path), verify(url)):
        assert report.status == "ok" and report.rows == len(RECORDS), report.findings


def test_a_number_past_64_bits_is_refused_alike_on_both_engines(tmp_path: Path, pg_ledger: str) -> None:
    for engine in (_sqlite(tmp_path / "ledger.db"), _postgres(pg_ledger)):
        with engine as conn:
            with pytest.raises(LedgerError) as raised:
                append(conn, Hasher(), "token_reservations", {**RECORDS[3][1], "tokens": 2**63})
            assert raised.value.reason == "value"
            assert _stored(conn) == []
