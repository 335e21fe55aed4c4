"""How many HTTP sessions one caller may hold open: `SESSIONS_PER_CALLER`.

A session holds the server's memory (its transport, its streams and its task) for as long as it is
open, and an idle one stays open until the idle timeout, half an hour: a caller that opens sessions and forgets
them (a host that restarts without a DELETE, a script in a loop) would hold thousands. Past the limit, a caller's
new session takes the place of that caller's session idle the longest, ended as a DELETE ends it; the client of
an ended session gets 404 on its next request, and the spec has it open a new session. A session with a request
in flight (an open GET stream included) is never ended for this: when all of a caller's sessions are busy, its
new one is refused with 429. One caller's sessions never make room for another's.

A caller is who the session manager holds a session's owner to be: the OAuth principal (client, issuer,
subject), or with a static token, whoever holds it (one caller). This wraps the session manager's own app, inside
authentication, and sees every request to a session; it forgets a session once it has answered a DELETE or a
404, or once it has been idle past the manager's idle timeout.
"""

import logging
import time
from collections import Counter
from collections.abc import Callable, Hashable

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.transports.http.refusals import note_refusal

__all__ = ["SESSIONS_PER_CALLER", "SessionsPerCaller", "caller_of"]

logger = logging.getLogger("server.http.sessions")  # its name before the regrouping: log collectors filter by it

SESSIONS_PER_CALLER = 32
"""Enough for a person's hosts, windows and agents at once with room to spare; a caller that leaks sessions
holds the memory of at most this many instead of all the server has."""

_Caller = Hashable
_NOBODY = object()


class SessionsPerCaller:
    """ASGI middleware around the session manager's app: at most `limit` sessions open per caller."""

    def __init__(self, app: ASGIApp, *, limit: int, idle_timeout_s: float) -> None:
        self._app = app
        self._limit = limit
        self._idle_timeout_s = idle_timeout_s
        self._owned: dict[_Caller, dict[str, float]] = {}
        """Each caller's sessions and when each was last used, the least recently used first."""
        self._owner: dict[str, _Caller] = {}
        self._busy: Counter[str] = Counter()
        self._opening: Counter[_Caller] = Counter()
        self._next_sweep = time.monotonic() + idle_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        version = headers.get(MCP_PROTOCOL_VERSION_HEADER)
        if scope["type"] != "http" or (version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS):
            await self._app(scope, receive, send)  # a protocol era without sessions
            return
        session = headers.get(MCP_SESSION_ID_HEADER)
        if session is None:
            await self._open(scope, receive, send)
        elif self._owner.get(session, _NOBODY) == caller_of(scope):
            await self._use(session, scope, receive, send)
        else:  # no session of ours, or another caller's (which the manager answers 404, as if there were none)
            await self._app(scope, receive, send)

    async def _open(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A request without a session: the manager opens one for it, kept if its answer carries the new id."""
        caller = caller_of(scope)
        self._forget_expired()
        owned = self._owned.setdefault(caller, {})
        making_room: dict[str, float] = {}
        while len(owned) + self._opening[caller] >= self._limit:
            idle = next((s for s in owned if not self._busy[s]), None)
            if idle is None:
                await self._refuse(scope, receive, send)
                return
            making_room[idle] = owned[idle]
            self._forget(idle)
        opened = False

        def kept(session: str) -> None:
            """The session is open: counted from now, as its client may use it before this request ends."""
            nonlocal opened
            opened = True
            self._opening[caller] -= 1
            self._owner[session] = caller
            self._owned.setdefault(caller, {})[session] = time.monotonic()

        self._opening[caller] += 1  # counted before any wait, so callers opening at once cannot pass the limit
        try:
            for idle, used in making_room.items():
                if not await self._end(idle, scope):  # still open: counted again, the idlest as before
                    self._owner[idle] = caller
                    self._owned[caller] = {idle: used, **self._owned.get(caller, {})}
            await self._app(scope, receive, _opening(send, kept))
        finally:
            if not opened:
                self._opening[caller] -= 1
            if not self._opening[caller]:
                del self._opening[caller]
            if not self._owned.get(caller, True):
                del self._owned[caller]

    async def _use(self, session: str, scope: Scope, receive: Receive, send: Send) -> None:
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self._busy[session] += 1
        try:
            await self._app(scope, receive, watch)
        finally:
            self._busy[session] -= 1
            if not self._busy[session]:
                del self._busy[session]
            if status == 404 or (scope["method"] == "DELETE" and status < 300):
                self._forget(session)
            elif (owned := self._owned.get(self._owner.get(session))) is not None and session in owned:
                del owned[session]  # used last: the end of the line
                owned[session] = time.monotonic()

    async def _end(self, session: str, scope: Scope) -> bool:
        """End a session as its client would, by a DELETE with the headers of the request that needs its place
        (the same caller, so the manager's check of the session's owner passes as it did for the client). False
        when the manager refused (a Host or Origin it refuses, which it will refuse the request for too)."""
        headers = [(k, v) for k, v in scope["headers"] if k not in _NOT_COPIED] + [
            (MCP_SESSION_ID_HEADER.lower().encode(), session.encode())
        ]
        delete: Scope = {**scope, "method": "DELETE", "headers": headers}

        async def nothing() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        status = 0

        async def answered(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self._app(delete, nothing, answered)
        if status not in (200, 404):  # 404: it had ended already (its idle timeout)
            return False
        logger.info("Ended the HTTP session idle longest to open another: its caller holds %d", self._limit)
        return True

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"{self._limit} sessions open, each with a request in flight"
        note_refusal("session_limit", detail)
        body = {
            "jsonrpc": "2.0",
            "id": None,
            "error": {
                "code": -32600,
                "message": f"Too many open sessions: this caller holds {self._limit}, each with a request in "
                "flight; end one (DELETE) or wait for one to finish",
            },
        }
        await JSONResponse(body, status_code=429, headers={"Retry-After": "1"})(scope, receive, send)

    def _forget(self, session: str) -> None:
        caller = self._owner.pop(session, None)
        owned = self._owned.get(caller)
        if owned is not None:
            owned.pop(session, None)
            if not owned and not self._opening[caller]:
                del self._owned[caller]

    def _forget_expired(self) -> None:
        """Forget the sessions the manager has ended for idleness (idle past its timeout), at most once a timeout:
        a caller's own are ended (again) when it needs room, so this only keeps callers that left from piling up."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._idle_timeout_s
        expired = now - self._idle_timeout_s
        for session in [s for s, caller in self._owner.items() if self._owned[caller][s] < expired]:
            if not self._busy[session]:
                self._forget(session)


def _opening(send: Send, kept: Callable[[str], None]) -> Send:
    """`send`, telling `kept` the id of the session its answer opens, as the answer starts."""

    async def watch(message: Message) -> None:
        if (
            message["type"] == "http.response.start"
            and message["status"] < 400
            and (session := Headers(raw=message.get("headers", [])).get(MCP_SESSION_ID_HEADER)) is not None
        ):
            kept(session)
        await send(message)

    return watch


_NOT_COPIED = frozenset({MCP_SESSION_ID_HEADER.lower().encode(), b"last-event-id", b"content-length"})


def caller_of(scope: Scope) -> Hashable:
    """Who a request comes from, as the session manager tells a session's owner: the OAuth principal, or None for
    whoever holds the static token."""
    user = scope.get("user")
    if not isinstance(user, AuthenticatedUser):
        return None  # a static token's holder
    principal = authorization_context(user)
    return (principal["client_id"], principal["issuer"], principal["subject"])
