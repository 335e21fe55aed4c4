"""How many HTTP connections may be open, and how long a request may take to arrive.

uvicorn's HTTP protocols start no timer when a connection opens, and cancel their keep-alive timer on any byte
received: a client that sends half a request, or a byte now and then, holds its connection (and a descriptor)
for as long as it likes, and a few hundred such clients hold them all. `guarded_protocol` closes a connection
that has not delivered a request whole (headers and body) within the request timeout of opening, or of the
request's first byte on a kept-alive connection (idle, it is the keep-alive timer's), and keeps at most
`max_connections` open: a connection past the limit takes the place of the one that has waited longest for its
request, so a caller whose request comes at once is served even while stalled connections fill every place. A
connection with its request in hand is never closed for this; when every one has, the newcomer is.

The protocol is uvicorn's httptools one (llhttp, in C), not its h11 one: h11 parses and frames in Python, about
0.1 ms of CPU per request, a twentieth of a governed call's. llhttp keeps no limit of its own on a request's head,
so the head (request line and headers) that has not arrived whole is held to h11's 16 KiB, past which the request
is answered 400 and its connection closed, as h11 does.

It reaches into uvicorn's httptools protocol (its parser's callbacks and hooks): tests/server/test_http_limits.py
runs it against a real server process, so an upgrade that moves them fails there.
"""

import asyncio
from dataclasses import dataclass
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from server.transports.http.refusals import Reason, ThrottledRefusalLog, remote_address

__all__ = ["ConnectionLimits", "descriptor_share", "guarded_protocol"]

_MAX_HEAD = 16 * 1024
"""The most bytes of a request's head held before it has come whole: h11's limit (its `max_incomplete_event_size`)."""


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int
    request_timeout_s: float

    @property
    def backlog(self) -> int:
        """The listen backlog: a quarter of the limit (16 to 2048). asyncio accepts up to a backlog's worth of
        connections at once, before any is counted, so the descriptors in use may pass the limit by that much,
        once or twice over, before the newcomers take the place of those waiting."""
        return min(2048, max(16, self.max_connections // 4))


def descriptor_share(wanted: int) -> int:
    """`wanted`, or half the descriptors this process may open if that is fewer: the ledger, the store and the
    connections to Vault and the LLM need the other half."""
    try:
        import resource
    except ImportError:  # not on Windows
        return wanted
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return wanted if soft in (resource.RLIM_INFINITY, 0) else max(1, min(wanted, soft // 2))


class _Shared:
    """What the connections of one server share: the limits, the refusal log, who is open and who is waiting."""

    def __init__(self, limits: ConnectionLimits, refusals: ThrottledRefusalLog) -> None:
        self.limits = limits
        self.refusals = refusals
        self.live: set[_Guarded] = set()
        self.waiting: dict[_Guarded, None] = {}
        """The connections the server waits on for a request's bytes, the longest-waiting first."""


class _Guarded(HttpToolsProtocol):
    _shared: ClassVar[_Shared]
    _deadline: asyncio.TimerHandle | None = None
    _in_hand = 0
    """Requests whose bytes have all come and whose answer is not yet complete (a pipelined one waits its turn)."""
    _begun = False
    """Bytes of a request have come, not yet all of them."""
    _in_head = True
    """The request the server waits for has not yet come to the end of its head."""
    _head = 0
    """Bytes of that head so far."""
    _heads = 0
    """Heads come whole on this connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        shared = self._shared
        shared.live.add(self)
        if len(shared.live) > shared.limits.max_connections:
            if not shared.waiting:
                self._close("connection_limit", f"{shared.limits.max_connections} connections open, all in use")
                return
            next(iter(shared.waiting))._close("connection_limit", "closed to make room: it waited longest")
        self._watch(started=True)

    def data_received(self, data: bytes) -> None:
        counting, heads = self._in_head, self._heads
        super().data_received(data)
        if counting and heads == self._heads and not self.transport.is_closing():  # every byte went to one head
            self._head += len(data)
            if self._head > _MAX_HEAD:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
        self._watch(started=True)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._begun = True

    def on_headers_complete(self) -> None:
        self._in_head, self._head, self._heads = False, 0, self._heads + 1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._begun, self._in_head, self._in_hand = False, True, self._in_hand + 1

    def on_response_complete(self) -> None:
        self._in_hand -= 1
        super().on_response_complete()
        # Idle between requests, a connection is uvicorn's keep-alive timer's to close, until a byte comes.
        self._watch(started=self._begun)

    def connection_lost(self, exc: Exception | None) -> None:
        self._shared.live.discard(self)
        self._unwatch()
        super().connection_lost(exc)

    def _watch(self, *, started: bool) -> None:
        """While the server waits for a request, count the connection as waiting, and once the request has
        `started` (the connection is new, or bytes came), run its clock; stop both when the request is in."""
        if self._in_hand > 0 or self.transport.is_closing():
            self._unwatch()
            return
        self._shared.waiting.setdefault(self, None)
        if started and self._deadline is None:
            self._deadline = self.loop.call_later(self._shared.limits.request_timeout_s, self._timed_out)

    def _unwatch(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._shared.waiting.pop(self, None)

    def _timed_out(self) -> None:
        self._deadline = None
        self._close("request_timeout", f"no whole request within {self._shared.limits.request_timeout_s:g} s")

    def _close(self, reason: Reason, detail: str) -> None:
        """Close now, dropping anything unsent: a client that does not send may not read either."""
        self._shared.live.discard(self)
        self._unwatch()
        method = path = "-"
        if self._begun and not self._in_head:  # its head came, not its body
            method, path = self.scope["method"], self.scope["path"]
        self._shared.refusals.refused(reason, detail, remote=remote_address(self.client), method=method, path=path)
        self.transport.abort()


def guarded_protocol(limits: ConnectionLimits, refusals: ThrottledRefusalLog) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol under `limits`, for one server; what it closes leaves a line in `refusals`."""

    class GuardedHttpToolsProtocol(_Guarded):
        _shared = _Shared(limits, refusals)

    return GuardedHttpToolsProtocol
