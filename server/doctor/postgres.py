"""The doctor's view of a ledger on PostgreSQL: can this role reach it, is its schema the ledger's, is the
chain's head intact. Read-only, like every doctor check: one read-only transaction."""

from collections.abc import Iterator

from ledger import LedgerError
from ledger.append import check_head
from ledger.chain import Hasher
from ledger.engines import locate
from server.config.ledger import ledger_key
from server.config.settings import Settings, SettingsError
from server.doctor.check import Check

__all__ = ["postgres_checks"]


def postgres_checks(settings: Settings, url: str) -> Iterator[Check]:
    try:
        key = ledger_key(settings)
    except SettingsError as exc:
        yield Check("ledger.key", "fail", str(exc), "Fix PLANNER_MCP_LEDGER_KEY_FILE.")
        return
    try:
        storage = locate(url, busy_timeout_s=settings.ledger_busy_timeout_s)
    except ImportError:
        yield Check("ledger", "fail", "PLANNER_MCP_LEDGER is a PostgreSQL URL, but psycopg is not installed",
                    "pip install 'planner-mcp[postgres]'")  # fmt: skip
        return
    try:
        with storage.snapshot() as conn:
            if found := storage.recorded_differences(conn):
                raise LedgerError(
                    f"the schema of {storage.where} is not the one planner-mcp made: {found[0].problem}", "tampered"
                )
            at = check_head(conn, Hasher(key), storage.where)
    except LedgerError as exc:
        fix = "Run `planner-mcp ledger verify` to see what changed." if exc.reason == "tampered" else ""
        yield Check("ledger", "fail", str(exc), fix or "Fix the database, or PLANNER_MCP_LEDGER.")
        return
    keyed = "keyed (HMAC-SHA256)" if key else "unkeyed (SHA-256; set PLANNER_MCP_LEDGER_KEY_FILE to key it)"
    yield Check("ledger", "ok", f"{storage.where}: chain head at seq {at.seq} intact, {keyed}")
