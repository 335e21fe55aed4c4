"""A GET that asks to resume a stream (`Last-Event-ID`) is told it cannot be, with a 400, not a 500.

This server keeps no history of the events it sends (no event store), so it numbers none and a stream cannot be
resumed. The SDK's transport, asked to replay without a store, returns without answering, and uvicorn then answers
500 and logs an error, on every such request. `NoReplay` answers what the SDK left unanswered: once the
SDK's own checks (Host, Origin, the session and its owner, Accept) have passed, as they have when it got that far.
"""

from mcp.server.streamable_http import LAST_EVENT_ID_HEADER
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["NoReplay"]

_BODY = {
    "jsonrpc": "2.0",
    "id": None,
    "error": {
        "code": -32600,
        "message": "Bad Request: this server keeps no event history, so a stream cannot be resumed; send the GET "
        "without Last-Event-ID for a new stream, and send again any request whose answer was lost",
    },
}


class NoReplay:
    """ASGI middleware around the session manager's app: a GET with `Last-Event-ID` is answered 400."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or LAST_EVENT_ID_HEADER not in Headers(scope=scope):
            await self._app(scope, receive, send)
            return
        answered = False

        async def watch(message: Message) -> None:
            nonlocal answered
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        await self._app(scope, receive, watch)
        if not answered:
            await JSONResponse(_BODY, status_code=400)(scope, receive, send)
