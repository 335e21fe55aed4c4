"""A `notifications/cancelled` stops only the request whose id it names exactly: the same type and the same value.

The SDK's dispatcher keys the requests in flight by `coerce_request_id`, under which the string "50" and the
number 50 (and " 50", "050", "5_0") are one id, so a cancel naming 50 stops the request whose id is "50": that
request runs to its end, the ledger records its outcome, and its answer is never sent. JSON-RPC ids differ when
their type or their value does. `InFlight` keeps the ids in flight as they were sent; `exact_cancels` puts it
between a transport's streams and the dispatcher: a cancel that names no request in flight exactly is dropped
(the spec lets a receiver ignore a cancel for a request it does not know), and a request whose id the dispatcher
could not tell from one in flight is answered `Invalid Request` at once, rather than share that request's cancel.
Over HTTP, `server.http.cancels` applies the same rule to each session's POSTs.
"""

from typing import Any

from mcp.shared.dispatcher import coerce_request_id
from mcp.shared.jsonrpc_dispatcher import cancelled_request_id_from_params
from mcp.shared.message import SessionMessage
from mcp.types import INVALID_REQUEST, ErrorData, JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse
from mcp_types import RequestId

from server.streams import ReadThrough, WriteThrough

__all__ = ["CANCELLED", "InFlight", "exact_cancels", "id_in_use"]

CANCELLED = "notifications/cancelled"


class InFlight:
    """The ids of the requests in flight on one connection, each as it was sent, under the dispatcher's key."""

    def __init__(self) -> None:
        self._ids: dict[RequestId, RequestId] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def start(self, request_id: RequestId) -> bool:
        """Count the request in; False when its id is one the dispatcher cannot tell from a request in flight."""
        key = coerce_request_id(request_id)
        if key in self._ids:
            return False
        self._ids[key] = request_id
        return True

    def names(self, request_id: RequestId) -> bool:
        """Whether `request_id` is exactly the id of a request in flight."""
        return _same(self._ids.get(coerce_request_id(request_id)), request_id)

    def end(self, request_id: RequestId) -> None:
        key = coerce_request_id(request_id)
        if _same(self._ids.get(key), request_id):
            del self._ids[key]

    def admits(self, message: JSONRPCNotification) -> bool:
        """Whether the dispatcher may see this notification: any but a cancel that names no request in flight."""
        named = _cancelled(message)
        return named is None or self.names(named)  # None: not a cancel, or one naming no id (the SDK ignores it too)


def _cancelled(message: JSONRPCNotification) -> RequestId | None:
    return cancelled_request_id_from_params(message.params) if message.method == CANCELLED else None


def _same(kept: RequestId | None, sent: RequestId) -> bool:
    return kept is not None and type(kept) is type(sent) and kept == sent


def id_in_use(request_id: RequestId) -> JSONRPCError:
    return JSONRPCError(
        jsonrpc="2.0",
        id=request_id,
        error=ErrorData(
            code=INVALID_REQUEST,
            message=f"Invalid Request: the id {request_id!r} is taken by a request in flight; give each request "
            "its own id (this server cannot tell ids apart that differ only as a number and its digits)",
        ),
    )


def exact_cancels(read: Any, write: Any) -> tuple["_Reading", "_Writing"]:
    """The stream pair the dispatcher should use instead of `read` and `write`, keeping cancels exact."""
    in_flight = InFlight()
    return _Reading(read, write, in_flight), _Writing(write, in_flight)


class _Reading(ReadThrough):
    def __init__(self, inner: Any, write: Any, in_flight: InFlight) -> None:
        super().__init__(inner)
        self._write = write
        self._in_flight = in_flight

    async def receive(self) -> SessionMessage | Exception:
        while True:
            item = await self._inner.receive()
            if not isinstance(item, SessionMessage):
                return item  # type: ignore[no-any-return]
            message = item.message
            if isinstance(message, JSONRPCRequest) and not self._in_flight.start(message.id):
                await self._write.send(SessionMessage(id_in_use(message.id)))
            elif not isinstance(message, JSONRPCNotification):
                return item
            elif self._in_flight.admits(message):
                if (named := _cancelled(message)) is not None:
                    self._in_flight.end(named)  # no answer will be written for it, and its id may be used again
                return item


class _Writing(WriteThrough):
    """The write stream: an answer (a result or an error) ends its request's time in flight."""

    def __init__(self, inner: Any, in_flight: InFlight) -> None:
        super().__init__(inner)
        self._in_flight = in_flight

    async def send(self, item: SessionMessage, /) -> None:
        message = item.message
        if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id is not None:
            self._in_flight.end(message.id)
        await self._inner.send(item)
