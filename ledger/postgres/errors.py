"""What PostgreSQL's errors mean for the ledger, named by cause, so an operator knows what to fix.

Every error is a `LedgerError`, so every call is refused (LEDGER_UNAVAILABLE) with the cause in words:
nothing is read and no LLM is asked until the ledger records again. Each cause reads differently: the
database down, out of reach (the connect timeout), read-only, out of disk, a lock or statement timeout, a
connection lost. The server's own words follow in parentheses; they never hold the URL's password (a URL
libpq cannot read is refused by `unreadable_url`, which does not repeat it).
"""

import psycopg

from ledger.errors import LedgerError, Reason

__all__ = ["from_postgres", "unreadable_url"]

_LOST = "lost the connection"
_DOWN = "is down"
_BUSY = "PLANNER_MCP_LEDGER_BUSY_TIMEOUT"
_LOST_CONNECTION: tuple[Reason, str] = ("unavailable", f"{_LOST} to the database")
_STARTING_OR_STOPPING: tuple[Reason, str] = ("unavailable", f"{_DOWN}: it is starting up, shutting down or recovering")
_INIT = "run `planner-mcp ledger init` as the schema's owner"
_NO_SCHEMA: tuple[Reason, str] = ("unavailable", f"has no ledger schema: {_INIT}")

# By SQLSTATE, then by its class (the first two characters) where one class holds one cause.
_BY_CODE: dict[str, tuple[Reason, str]] = {
    "25006": ("read-only", "is read-only (a hot standby, or default_transaction_read_only is on)"),
    "53100": ("full", "is out of disk space"),
    "55P03": ("locked", f"timed out waiting for a lock another session holds (lock timeout, {_BUSY})"),
    "42501": ("denied", "refused this role a privilege it needs (grant it planner_mcp_writer)"),
    "42P01": _NO_SCHEMA,
    "3F000": _NO_SCHEMA,
    "57P01": ("unavailable", f"{_LOST}: the server ended the session (an administrator, or a shutdown)"),
    "57P02": ("unavailable", f"{_LOST}: the server crashed"),
    "57P03": _STARTING_OR_STOPPING,
    "3D000": ("unavailable", "has no such database"),
}
_BY_CLASS: dict[str, tuple[Reason, str]] = {
    "08": _LOST_CONNECTION,
    "53": ("full", "ran out of a resource"),
    "58": ("io", "had an I/O error"),
    "XX": ("corrupt", "reported an internal error"),
    "23": ("tampered", "refused a row the chain's constraints forbid"),
}
_STATEMENT_TIMEOUT: tuple[Reason, str] = ("timeout", f"did not finish a statement within the statement timeout "
                                          f"(twice {_BUSY})")  # fmt: skip
_CANCELLED: tuple[Reason, str] = ("unavailable", "cancelled the statement (an administrator, or pg_cancel_backend)")

# A connection that could not be made carries no SQLSTATE: libpq's message says why.
_CONNECT_FAILURES: list[tuple[str, tuple[Reason, str]]] = [
    ("connection refused", ("unavailable", f"{_DOWN}: nothing accepts connections at its address")),
    ("password authentication failed", ("unavailable", "refused the password (the URL, PGPASSWORD or a passfile)")),
    ("no pg_hba.conf entry", ("unavailable", "refused this role from this host (pg_hba.conf)")),
    ("does not exist", ("unavailable", "has no such database or role")),
    ("the database system is", _STARTING_OR_STOPPING),
]
_UNREACHABLE: tuple[Reason, str] = ("unavailable", "cannot be reached")
_CONNECT_TIMEOUT: tuple[Reason, str] = ("unavailable", f"did not answer within the connect timeout ({_BUSY}, "
                                        "at least 2 s)")  # fmt: skip


def from_postgres(where: str, exc: BaseException) -> LedgerError:
    """The `LedgerError` for a driver error at the ledger `where` (a URL without its password)."""
    detail = _first_line(exc)
    reason, says = _cause(exc, detail)
    return LedgerError(f"the ledger {where} {says} ({detail})", reason)


def unreadable_url(exc: BaseException) -> LedgerError:
    """A URL libpq cannot parse, refused without repeating it or libpq's words, which quote it (and may hold
    its password, which the server cannot then find to scrub)."""
    return LedgerError(
        f"PLANNER_MCP_LEDGER is not a PostgreSQL URL libpq can read ({type(exc).__name__}; the URL is not repeated "
        "here, since it may hold a password: check its percent-encoding, brackets and parameters)"
    )


def _cause(exc: BaseException, detail: str) -> tuple[Reason, str]:
    code = getattr(exc, "sqlstate", None) or ""
    if code == "57014":
        primary = getattr(getattr(exc, "diag", None), "message_primary", None) or detail
        return _STATEMENT_TIMEOUT if "statement timeout" in primary else _CANCELLED
    if found := _BY_CODE.get(code) or _BY_CLASS.get(code[:2]):
        return found
    if isinstance(exc, psycopg.errors.ConnectionTimeout):
        return _CONNECT_TIMEOUT
    if not isinstance(exc, psycopg.OperationalError):
        return "unavailable", "cannot be written"
    if getattr(exc, "pgconn", None) is None:
        return _LOST_CONNECTION  # an established connection broke: the server or the network went away
    lowered = str(exc).lower()
    return next((cause for words, cause in _CONNECT_FAILURES if words in lowered), _UNREACHABLE)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
