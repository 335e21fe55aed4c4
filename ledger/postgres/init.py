"""`planner-mcp ledger init`: make the ledger's schema and roles in an empty PostgreSQL database.

Run as the role that will own the tables, never as the one the servers connect as: a writer that owned them
could drop the triggers that keep them append-only. `schema.sql` is the whole of it, applied in one
transaction, so a failure leaves the database as it was; a DBA may apply it by hand instead.
"""

from pathlib import Path
from typing import TYPE_CHECKING

from ledger.errors import LedgerError
from ledger.postgres.catalog import SCHEMA, differences
from ledger.postgres.urls import bounded, redacted

if TYPE_CHECKING:
    from ledger.postgres.storage import PostgresConn

__all__ = ["SCHEMA_FILE", "initialise", "schema_sql"]

SCHEMA_FILE = Path(__file__).with_name("schema.sql")


def schema_sql() -> str:
    """The SQL `init` applies, for a DBA to read or apply: needs neither the driver nor a database."""
    return SCHEMA_FILE.read_text(encoding="utf-8")


def initialise(url: str, *, busy_timeout_s: float = 5.0) -> str:
    """Apply `schema.sql` at `url`; return what was done, in words. A ledger already there, as `schema.sql`
    makes it, is left alone; anything else in the way is refused with a `LedgerError`."""
    import psycopg

    from ledger.postgres.errors import from_postgres, unreadable_url
    from ledger.postgres.storage import PostgresConn

    where = redacted(url)
    try:
        conninfo = bounded(url, busy_timeout_s)
    except (psycopg.Error, ValueError) as exc:  # libpq's words quote the URL, and with it any password
        raise unreadable_url(exc) from None
    try:
        with psycopg.connect(conninfo, autocommit=True) as raw:
            conn = PostgresConn(raw)
            if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = ?", (SCHEMA,)).fetchone() is not None:
                return _existing(conn, where)
            with raw.transaction():
                raw.execute(schema_sql().encode())
    except psycopg.Error as exc:
        raise from_postgres(where, exc) from None
    return f"created the ledger schema {SCHEMA} and the roles planner_mcp_writer and planner_mcp_reader in {where}"


def _existing(conn: "PostgresConn", where: str) -> str:
    if found := differences(conn):
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise LedgerError(
            f"{where} already has a schema {SCHEMA} that is not the ledger's: {found[0].problem}{more}; "
            "`planner-mcp ledger verify` names every difference",
            "tampered",
        )
    return f"{where} already holds the ledger schema {SCHEMA}; nothing to do"
