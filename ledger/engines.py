"""Which engine holds a ledger: the one place that knows both, so neither imports the other."""

from pathlib import Path

from ledger.connection import Synchronous
from ledger.errors import LedgerError
from ledger.storage import Location, Storage, is_postgres_url

__all__ = ["locate"]


def locate(
    location: Location,
    *,
    busy_timeout_s: float = 5.0,
    synchronous: Synchronous = "full",
    max_bytes: int | None = None,
) -> Storage:
    """The storage at `location`. PostgreSQL's driver is imported only here, only for a `postgresql://` URL."""
    if is_postgres_url(location):
        try:
            from ledger.postgres.storage import PostgresStorage
        except ImportError as exc:
            raise LedgerError(
                f"the ledger is a PostgreSQL URL, but its driver cannot be loaded ({exc}): "
                "pip install 'planner-mcp[postgres]'"
            ) from None
        return PostgresStorage(str(location), busy_timeout_s=busy_timeout_s, synchronous=synchronous)
    from ledger.sqlite_storage import SqliteStorage

    return SqliteStorage(Path(location), busy_timeout_s=busy_timeout_s, synchronous=synchronous, max_bytes=max_bytes)
