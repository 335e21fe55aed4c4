"""Who made a call, as its ledger rows record it, so `read_logs` can show each caller its own calls and `ledger
replay` can judge each recorded call again under another agents file.

Over HTTP with OAuth, a caller is the SDK's principal: the client the access token was issued to and its subject
(and, with an agents file, the issuer, as it may accept several). With an agents file, a static token's caller is
the start of the token's digest (`caller: static=sha256:…`; `token=…` would read as a secret, and be scrubbed).
Over stdio, or with the single PLANNER_MCP_HTTP_TOKEN, there is no one in particular.

The record is text in a row's `notes` (`caller: client=… sub=…`), after text the caller chose (a resource URI,
a prompt name), and a caller's rows are found by it. So it can be neither spelt nor cut by anyone else: each
value in it is %-escaped (no space, `;` or `=` survives), it closes the notes whole (what comes before it is
cut to fit, and holds no `;`), and only it starts the last `; `-separated part with `caller: `. Rows match a
caller when their notes are its record, or end with `; ` and its record. The groups and scopes a token carried,
which can change from one token to the next, are in the part before it (`claims: groups=… scopes=…`), so a
caller's rows stay its own when they do.
"""

import hashlib
from dataclasses import dataclass
from urllib.parse import quote, unquote

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken

__all__ = ["IDENTITY_CLAIM", "MAX_VIA", "Identity", "caller", "identity", "identity_of", "recorded_identity", "via"]

MAX_VIA = 2048
"""The most of `via` a ledger row keeps (the gate cuts it there): a caller's record and claims always fit whole."""

IDENTITY_CLAIM = "planner-mcp/identity"
"""Where the agents file's verifier leaves the `Identity` it made, among an access token's claims."""

_KEPT = "/:@!$&'()*+,?"
"""Characters kept as they are in a recorded value, so URLs and e-mail addresses read as themselves."""
_KEPT_IN_LISTS = "/:@!$&'()*?"
"""In a list of groups or scopes, `,` separates and `+` counts what was left out: both are escaped in a value."""
_VALUE = 64
"""The longest a recorded value gets: a longer one keeps its start and a digest (`#`, which is always escaped)."""
_ISSUER = 256
"""An issuer is a URL, often longer than other values, and replay must match it whole."""
_LISTED = 12
"""The most groups (and scopes) recorded; past it, `+N` says how many more the token carried."""
_DIGEST_SHOWN = 16
"""Hex digits of a static token's SHA-256 that name its caller: enough to tell callers apart, too few to test
guesses of the token against."""


@dataclass(frozen=True)
class Identity:
    """What a caller is, as far as an agents file can match it."""

    client_id: str | None = None
    subject: str | None = None
    issuer: str | None = None
    groups: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    token_digest: str | None = None
    """The SHA-256 of a static token, in hex: whole when the token was presented, its start when read back from a
    ledger row."""
    incomplete: bool = False
    """Read back from a row: not all of it was recorded whole (a long value cut to its start and a digest, or
    more groups or scopes than a row lists), so a rule may match the caller and not be seen to."""

    def record(self) -> str:
        """The caller's record, as the last part of its rows' notes."""
        if self.token_digest is not None:
            return f"caller: static=sha256:{self.token_digest[:_DIGEST_SHOWN]}"
        record = f"caller: client={_value(self.client_id)} sub={_value(self.subject)}"
        return record if self.issuer is None else f"{record} iss={_value(self.issuer, _ISSUER)}"

    def claims(self) -> str:
        """The groups and scopes the caller's token carried, as the part of notes before the record ('' if none)."""
        lists = (("groups", self.groups), ("scopes", self.scopes))
        parts = [f"{name}={_listed(values)}" for name, values in lists if values]
        return "claims: " + " ".join(parts) if parts else ""

    def describe(self) -> str:
        """The caller for people: its record without the `caller: ` word."""
        return self.record().removeprefix("caller: ")


def _value(text: str | None, longest: int = _VALUE, kept: str = _KEPT) -> str:
    if text is None:
        return "-"
    escaped = quote(text, safe=kept) if text != "-" else "%2D"
    if len(escaped) <= longest:
        return escaped
    return escaped[: longest - 33] + "#" + hashlib.sha256(text.encode()).hexdigest()[:32]


def _listed(values: tuple[str, ...]) -> str:
    found = sorted(set(values))
    shown = [_value(value, kept=_KEPT_IN_LISTS) for value in found[:_LISTED]]
    if len(found) > _LISTED:
        shown.append(f"+{len(found) - _LISTED}")
    return ",".join(shown) or "-"


def identity_of(token: AccessToken | None) -> Identity | None:
    """The identity a token stands for: the one the agents file's verifier made, else its client and subject."""
    if token is None:
        return None
    made = (token.claims or {}).get(IDENTITY_CLAIM)
    if isinstance(made, Identity):
        return made
    return Identity(client_id=token.client_id, subject=token.subject)


def identity() -> Identity | None:
    """Who is making the current call, or None when no one in particular is (stdio, the single static token)."""
    return identity_of(get_access_token())


def caller() -> str | None:
    """The record of who is making the current call, or None when no one in particular is."""
    who = identity()
    return None if who is None else who.record()


def via(method: str = "", target: str = "") -> str:
    """How the current call arrived, for its ledger rows: the MCP method when it is not a tool call, with its
    target if it has one (a URI, a prompt name; `;` escaped, cut to fit), then the claims of its caller's token,
    then who called, whole and last."""
    who = identity()
    record = "" if who is None else "; ".join(part for part in (who.claims(), who.record()) if part)
    tail = f"; {record}" if record and method else record
    if not method:
        return record
    how = f"{method} {target[:MAX_VIA].replace(';', '%3B')}" if target else method
    return how[: MAX_VIA - len(tail)] + tail


def recorded_identity(notes: str) -> Identity | None:
    """The caller a row's notes record, read back (for replay), or None when they record no one."""
    parts = notes.split("; ")
    if not parts[-1].startswith("caller: "):
        return None
    fields = dict(_fields(parts[-1].removeprefix("caller: ")))
    before = parts[-2] if len(parts) > 1 else ""
    claims = dict(_fields(before.removeprefix("claims: "))) if before.startswith("claims: ") else {}
    if "static" in fields:
        return Identity(token_digest=fields["static"].removeprefix("sha256:"))
    groups, more_groups = _unlisted(claims.get("groups", "-"))
    scopes, more_scopes = _unlisted(claims.get("scopes", "-"))
    # `#` is escaped in every value recorded whole: one that holds it was cut.
    cut = any("#" in text for text in (*fields.values(), *claims.values()))
    return Identity(
        client_id=_unvalue(fields.get("client", "-")),
        subject=_unvalue(fields.get("sub", "-")),
        issuer=_unvalue(fields.get("iss", "-")),
        groups=groups,
        scopes=scopes,
        incomplete=more_groups or more_scopes or cut,
    )


def _fields(text: str) -> list[tuple[str, str]]:
    return [tuple(part.split("=", 1)) for part in text.split(" ") if "=" in part]  # type: ignore[misc]


def _unvalue(text: str) -> str | None:
    return None if text == "-" else unquote(text)


def _unlisted(text: str) -> tuple[tuple[str, ...], bool]:
    if text == "-":
        return (), False
    values = text.split(",")
    more = values[-1].startswith("+")
    return tuple(unquote(value) for value in values if not value.startswith("+")), more
