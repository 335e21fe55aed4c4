"""Over HTTP too, a cancel stops only the request whose id it names exactly (see server.transports.cancels for why).

In a session, each request comes in a POST of its own and is in flight until that POST has been answered; a
cancel comes in a POST too. `ExactCancels` reads each POST to a session as the SDK's transport will (the same
parser, up to the same size), keeps the session's requests in flight by their ids as sent, and answers a cancel
the SDK would take for that of another of them 202 (accepted, and ignored, as the spec allows) without passing it
on. Sessions are told apart by their id and their caller, so a request naming another caller's session is left
for the manager to refuse. A request counts as in flight until its POST ends: a cancel sent after its client
stopped listening passes, as it would have before.
"""

from collections.abc import Hashable

import pydantic_core
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from mcp_types import JSONRPCNotification, JSONRPCRequest, jsonrpc_message_adapter
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.transports.cancels import InFlight
from server.transports.http.sessions import caller_of

__all__ = ["ExactCancels"]


class ExactCancels:
    """ASGI middleware around the session manager's app: cancels in a session are matched to requests exactly."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._sessions: dict[tuple[str, Hashable], InFlight] = {}
        """The sessions with a request in flight, each with those requests' ids."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = Headers(scope=scope).get(MCP_SESSION_ID_HEADER) if scope["type"] == "http" else None
        if session is None or scope["method"] != "POST":
            await self._app(scope, receive, send)
            return
        received = await _body(receive)
        replayed = _replaying(received, receive)
        message = _message(received)
        key = (session, caller_of(scope))
        if isinstance(message, JSONRPCRequest):
            await self._request(key, message, scope, replayed, send)
        elif isinstance(message, JSONRPCNotification) and not self._sessions.get(key, InFlight()).admits(message):
            await Response(status_code=202)(scope, replayed, send)
        else:
            await self._app(scope, replayed, send)

    async def _request(
        self, key: tuple[str, Hashable], request: JSONRPCRequest, scope: Scope, receive: Receive, send: Send
    ) -> None:
        in_flight = self._sessions.setdefault(key, InFlight())
        in_flight.start(request.id)
        try:
            await self._app(scope, receive, send)
        finally:
            in_flight.end(request.id)
            if not in_flight:
                self._sessions.pop(key, None)


async def _body(receive: Receive) -> list[Message]:
    """The request's messages, up to its whole body or the SDK's limit on one (past it, the SDK refuses the body)."""
    received: list[Message] = []
    size = 0
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return received
        size += len(message.get("body", b""))
        if size > DEFAULT_MAX_REQUEST_BODY_SIZE:
            return received


def _replaying(received: list[Message], receive: Receive) -> Receive:
    pending = list(received)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


def _message(received: list[Message]) -> object:
    """The JSON-RPC message of a whole body, as the SDK's transport will read it; None when it is not one."""
    if received[-1]["type"] != "http.request" or received[-1].get("more_body", False):
        return None
    body = b"".join(m.get("body", b"") for m in received)
    try:
        return jsonrpc_message_adapter.validate_python(pydantic_core.from_json(body), by_name=False)
    except (ValueError, ValidationError):
        return None
