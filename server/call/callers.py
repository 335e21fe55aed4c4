"""Who made a call, as its ledger rows record it, so `read_logs` can show each caller its own calls.

Over HTTP with OAuth, a caller is the SDK's principal under the one issuer configured: the client the access
token was issued to and its subject. Over stdio, or with a static token, there is no one in particular.

The record is text in a row's `notes` (`caller: client=… sub=…`), after text the caller chose (a resource URI,
a prompt name), and a caller's rows are found by it. So it can be neither spelt nor cut by anyone else: each
value in it is %-escaped (no space, `;` or `=` survives), it closes the notes whole (what comes before it is
cut to fit, and holds no `;`), and only it starts the last `; `-separated part with `caller: `. Rows match a
caller when their notes are its record, or end with `; ` and its record.
"""

import hashlib
from urllib.parse import quote

from mcp.server.auth.middleware.auth_context import get_access_token

__all__ = ["MAX_VIA", "caller", "via"]

MAX_VIA = 256
"""The most of `via` a ledger row keeps (the gate cuts it there): a caller's record always fits whole."""

_KEPT = "/:@!$&'()*+,?"
"""Characters kept as they are in a recorded value, so URLs and e-mail addresses read as themselves."""
_VALUE = 64
"""The longest a recorded value gets: a longer one keeps its start and a digest (`#`, which is always escaped)."""


def _value(text: str | None) -> str:
    if text is None:
        return "-"
    escaped = quote(text, safe=_KEPT) if text != "-" else "%2D"
    if len(escaped) <= _VALUE:
        return escaped
    return escaped[: _VALUE - 33] + "#" + hashlib.sha256(text.encode()).hexdigest()[:32]


def caller() -> str | None:
    """The record of who is making the current call, or None when no one in particular is (stdio, static token)."""
    token = get_access_token()
    if token is None:
        return None
    return f"caller: client={_value(token.client_id)} sub={_value(token.subject)}"


def via(method: str = "", target: str = "") -> str:
    """How the current call arrived, for its ledger rows: the MCP method when it is not a tool call, with its
    target if it has one (a URI, a prompt name; `;` escaped, cut to fit), then who called, whole and last."""
    who = caller()
    record = f"; {who}" if who and method else who or ""
    if not method:
        return record
    how = f"{method} {target[:MAX_VIA].replace(';', '%3B')}" if target else method
    return how[: MAX_VIA - len(record)] + record
