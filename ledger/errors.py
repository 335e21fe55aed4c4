"""What can stop the ledger from recording, named by cause, so an operator knows what to fix."""

import sqlite3
from pathlib import Path
from typing import Literal

__all__ = ["LedgerError", "Reason", "from_sqlite"]

Reason = Literal[
    "locked", "full", "read-only", "io", "corrupt", "tampered", "key", "unavailable", "value", "timeout", "denied"
]
"""`value`: one row held a value SQLite cannot store; the ledger itself is sound and the next write may succeed."""

# Primary result codes (https://sqlite.org/rescode.html); the extended code's low byte is the primary one.
_REASONS: dict[int, tuple[Reason, str]] = {
    5: ("locked", "is locked by another process for longer than the busy timeout"),
    6: ("locked", "is locked by another connection"),
    13: ("full", "is full: the disk, or the size cap PLANNER_MCP_LEDGER_MAX_MB, has no room"),
    8: ("read-only", "is read-only: the server's user cannot write the file or its directory"),
    10: ("io", "had an I/O error; the server refuses calls until the ledger reopens cleanly"),
    11: ("corrupt", "is corrupt"),
    26: ("corrupt", "is not an SQLite database"),
    14: ("unavailable", "cannot be opened"),
}


class LedgerError(Exception):
    """The ledger cannot record (or be trusted): callers must fail closed."""

    def __init__(self, message: str, reason: Reason = "unavailable") -> None:
        super().__init__(message)
        self.reason: Reason = reason


def from_sqlite(path: Path, exc: sqlite3.Error) -> LedgerError:
    code = getattr(exc, "sqlite_errorcode", None)
    reason, says = _REASONS.get(code & 0xFF, ("unavailable", "cannot be written")) if code else ("unavailable", "")
    says = says or "cannot be written"
    return LedgerError(f"the ledger {path} {says} ({exc})", reason)
