"""PostgreSQL URLs as libpq reads them, shown without their password, and the bounds the ledger adds to them."""

import math
import os
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

__all__ = ["bounded", "is_loopback", "password_of", "redacted"]

_LOOPBACK = ("localhost", "127.0.0.1", "::1", "")


def redacted(url: str) -> str:
    """`url` with any password replaced by `***` (in the authority or as a `password=` parameter)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://(a URL that cannot be parsed)"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{hosts}"
    query = "&".join(
        "password=***" if pair.split("=", 1)[0].lower() == "password" else pair for pair in parts.query.split("&")
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query if parts.query else "", ""))


def password_of(url: str) -> str | None:
    """The password the URL carries (in its authority, or as a `password=` parameter), so it can be scrubbed
    from anything the server writes. Read without the driver, so naming a ledger imports nothing."""
    try:
        parts = urlsplit(url)
        given = parts.password
    except ValueError:
        return None
    for name, value in parse_qsl(parts.query):
        if name.lower() == "password":
            given = value
    return unquote(given) if given else None


def bounded(url: str, busy_timeout_s: float) -> str:
    """`url` as a libpq connection string with what the ledger sets where neither the URL nor a `PG*` variable
    does: a bounded connect, a bounded wait on a peer that vanished, and a name in `pg_stat_activity`."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    given = conninfo_to_dict(url)
    wait = max(2, math.ceil(busy_timeout_s))
    defaults: list[tuple[str, str | int, str | None]] = [
        ("connect_timeout", wait, "PGCONNECT_TIMEOUT"),
        ("application_name", "planner-mcp", "PGAPPNAME"),
        ("tcp_user_timeout", wait * 1000, None),
        ("keepalives_idle", wait, None),
        ("keepalives_interval", 1, None),
        ("keepalives_count", 3, None),
    ]
    added = {name: value for name, value, variable in defaults
             if name not in given and (variable is None or variable not in os.environ)}  # fmt: skip
    return make_conninfo(url, **added)


def is_loopback(url: str) -> bool:
    """Whether every host the URL names is this machine (or a Unix socket)."""
    from psycopg.conninfo import conninfo_to_dict

    hosts = str(conninfo_to_dict(url).get("host") or "")
    return all(host in _LOOPBACK or host.startswith("/") for host in hosts.split(","))
