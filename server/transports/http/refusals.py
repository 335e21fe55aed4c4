"""Refused HTTP requests on the record: a log line each saying why, from where and for what, rate-limited.

A refusal costs the refused nothing, so a line for every one would let anyone fill the disk and bury the lines
that matter. At most `_LINES` lines go out every `_WINDOW_S` seconds (the Linux kernel's printk rate limit);
past them, one line at the window's end counts the refusals that had no line of their own, by reason. What a
client sent (a path, an Origin, the reason a token check gave) is escaped and cut before it is logged, so it
cannot forge a line; the token never is.
"""

import asyncio
import logging
import math
import time
from collections import Counter
from contextvars import ContextVar
from typing import Literal

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["LogRefusals", "Reason", "ThrottledRefusalLog", "note_refusal", "remote_address"]

logger = logging.getLogger("server.http.refusals")  # its name before the regrouping: log collectors filter by it

Reason = Literal[
    "no_token", "invalid_token", "insufficient_scope", "origin_refused", "host_refused", "request_timeout",
    "connection_limit", "session_limit", "no_agent",
]  # fmt: skip
"""Why a request was refused: a short, fixed vocabulary, so a log collector can count by it."""

_LINES = 10
_WINDOW_S = 5.0
_SHOWN = 160
"""The most characters of a client's text (escaped) a line carries."""
_REFUSED = frozenset({401, 403, 421, 429})

_noted: ContextVar[list[tuple[Reason, str]] | None] = ContextVar("refusal_noted", default=None)


def note_refusal(reason: Reason, detail: str) -> None:
    """Say why the request in progress is about to be refused (a token check's reason), for its log line."""
    if (noted := _noted.get()) is not None:
        noted.append((reason, detail))


def _shown(text: str) -> str:
    """`text` as a log may carry it: control and non-ASCII characters escaped (no forged lines), and cut."""
    escaped = text[: _SHOWN + 1].encode("unicode_escape").decode("ascii")
    return escaped if len(escaped) <= _SHOWN else escaped[: _SHOWN - 3] + "..."


def remote_address(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "-"


class ThrottledRefusalLog:
    """Logs refusals at a bounded rate; `flush` logs the count of those that had no line (at a window's end, and
    when the server shuts down)."""

    def __init__(self) -> None:
        self._window_ends = -math.inf
        self._logged = 0
        self._unlogged: Counter[str] = Counter()
        self._timer: asyncio.TimerHandle | None = None

    def refused(
        self, reason: Reason, detail: str, *, remote: str, method: str = "-", path: str = "-", status: int | None = None
    ) -> None:
        """One refusal: a request answered `status`, or a connection closed (`status` None)."""
        now = time.monotonic()
        if now >= self._window_ends:
            self.flush()
            self._window_ends, self._logged = now + _WINDOW_S, 0
        if self._logged >= _LINES:
            self._unlogged[reason] += 1
            if self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self._window_ends - now, self.flush)
            return
        self._logged += 1
        fields = {"status": status, "reason": reason, "detail": _shown(detail), "remote": remote,
                  "method": _shown(method), "path": _shown(path)}  # fmt: skip
        logger.warning(
            "Refused HTTP %s %s from %s: %s %s%s",
            fields["method"], fields["path"], remote, status or "closed", reason,
            f" ({fields['detail']})" if detail else "", extra=fields,
        )  # fmt: skip

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._unlogged:
            return
        total = sum(self._unlogged.values())
        counts = ", ".join(f"{n} {reason}" for reason, n in self._unlogged.most_common())
        logger.warning(
            "Refused %d more HTTP requests without a line each (at most %d lines every %g s): %s",
            total, _LINES, _WINDOW_S, counts, extra={"suppressed": total},
        )  # fmt: skip
        self._unlogged.clear()


class LogRefusals:
    """ASGI middleware: every response that refuses its request (401, 403, 421) leaves a line in `log`.

    The reason is the one a check noted (`note_refusal`), or else what the status says: the SDK answers 421 to a
    Host and 403 to an Origin it does not accept, 403 with `insufficient_scope` to a token without a scope.
    """

    def __init__(self, app: ASGIApp, log: ThrottledRefusalLog) -> None:
        self._app = app
        self._log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._app(scope, receive, self._flushing(send))
            return
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        noted: list[tuple[Reason, str]] = []
        token = _noted.set(noted)

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in _REFUSED:
                status = message["status"]
                reason, detail = noted[-1] if noted else _said_by(status, Headers(scope=scope), message)
                self._log.refused(reason, detail, remote=remote_address(scope.get("client")), method=scope["method"],
                                  path=scope["path"], status=status)  # fmt: skip
            await send(message)

        try:
            await self._app(scope, receive, watched)
        finally:
            _noted.reset(token)

    def _flushing(self, send: Send) -> Send:
        """`send`, counting the refusals still without a line once the server has shut down: uvicorn ends the
        process by the signal it stopped for, so nothing after it runs."""

        async def flushing(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                self._log.flush()
            await send(message)

        return flushing


def _said_by(status: int, headers: Headers, response: Message) -> tuple[Reason, str]:
    if status == 421:
        return "host_refused", f"Host {headers.get('host', '(none)')}"
    if status == 403:
        challenge = Headers(raw=response.get("headers", [])).get("www-authenticate", "")
        if "insufficient_scope" in challenge:
            return "insufficient_scope", ""
        return "origin_refused", f"Origin {headers.get('origin', '(none)')}"
    if headers.get("authorization", "").lower().startswith("bearer "):
        return "invalid_token", ""
    return "no_token", ""
