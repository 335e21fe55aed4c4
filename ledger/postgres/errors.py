"""What PostgreSQL's errors mean for the ledger, named by cause, so an operator knows what to fix.

Every error is a `LedgerError`, so every call is refused (LEDGER_UNAVAILABLE) with the cause in words:
nothing is read and no LLM is asked until the ledger records again.
"""

import psycopg

from ledger.errors import LedgerError, Reason

__all__ = ["from_postgres"]

# By SQLSTATE class (its first two characters), then by the whole code where one class holds several causes.
_BY_CODE: dict[str, tuple[Reason, str]] = {
    "25006": ("read-only", "is read-only (a hot standby, or default_transaction_read_only is on)"),
    "53100": ("full", "is out of disk space"),
    "57014": ("timeout", "did not answer within the statement timeout (PLANNER_MCP_LEDGER_BUSY_TIMEOUT)"),
    "55P03": ("locked", "is busy: another writer held the chain for longer than PLANNER_MCP_LEDGER_BUSY_TIMEOUT"),
    "42501": ("denied", "refused this role a privilege it needs (grant it planner_mcp_writer)"),
    "42P01": ("unavailable", "has no ledger schema: run `planner-mcp ledger init` as the schema's owner"),
    "3F000": ("unavailable", "has no ledger schema: run `planner-mcp ledger init` as the schema's owner"),
    "57P01": ("unavailable", "was shut down by its administrator"),
    "57P02": ("unavailable", "crashed"),
    "57P03": ("unavailable", "is not accepting connections yet (starting up or recovering)"),
    "28P01": ("unavailable", "refused the password (check the URL, PGPASSWORD or the passfile)"),
    "28000": ("unavailable", "refused this role (pg_hba.conf or the role's LOGIN)"),
    "3D000": ("unavailable", "has no such database"),
}
_BY_CLASS: dict[str, tuple[Reason, str]] = {
    "08": ("unavailable", "lost its connection"),
    "53": ("full", "ran out of a resource"),
    "57": ("unavailable", "stopped the statement"),
    "58": ("io", "had an I/O error"),
    "XX": ("corrupt", "reported an internal error"),
    "23": ("tampered", "refused a row the chain's constraints forbid"),
}


def from_postgres(where: str, exc: BaseException) -> LedgerError:
    """The `LedgerError` for a driver error at the ledger `where` (a URL without its password)."""
    code = getattr(exc, "sqlstate", None) or ""
    found = _BY_CODE.get(code) or _BY_CLASS.get(code[:2])
    detail = _first_line(exc)
    if found is None and isinstance(exc, psycopg.OperationalError):
        timed_out = "timeout" in detail.lower()
        found = ("unavailable", "did not answer before the connect timeout" if timed_out else "cannot be reached")
    reason, says = found or ("unavailable", "cannot be written")
    return LedgerError(f"the ledger {where} {says} ({detail})", reason)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
