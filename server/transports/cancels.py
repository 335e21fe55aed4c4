"""A `notifications/cancelled` stops only the request whose id it names exactly: the same type and the same value.

The SDK's dispatcher keys the requests in flight by `coerce_request_id`, under which the string "50" and the
number 50 (and " 50", "050", "5_0") are one id, so a cancel naming 50 stops the request whose id is "50": that
request runs to its end, the ledger records its outcome, and its answer is never sent. JSON-RPC ids differ when
their type or their value does. `InFlight` keeps the ids in flight as they were sent; `exact_cancels` puts it
between a transport's streams and the dispatcher, and a cancel whose id the dispatcher would take for that of
another request in flight is dropped (the spec lets a receiver ignore a cancel for a request it does not know).
Two requests in flight under one key are both served, as before; the dispatcher's table then holds the newer, and
so does `InFlight`. Over HTTP, `server.transports.http.cancels` applies the same rule to each session's POSTs.
"""

from typing import Any

from mcp.shared.dispatcher import coerce_request_id
from mcp.shared.jsonrpc_dispatcher import cancelled_request_id_from_params
from mcp.shared.message import SessionMessage
from mcp.types import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse
from mcp_types import RequestId

from server.transports.streams import ReadThrough, WriteThrough

__all__ = ["CANCELLED", "InFlight", "exact_cancels"]

CANCELLED = "notifications/cancelled"


class InFlight:
    """The ids of the requests in flight on one connection, each as it was sent, under the dispatcher's key: as
    in the dispatcher's table, a request's id replaces that of an older one under the same key."""

    def __init__(self) -> None:
        self._ids: dict[RequestId, RequestId] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def start(self, request_id: RequestId) -> None:
        self._ids[coerce_request_id(request_id)] = request_id

    def end(self, request_id: RequestId) -> None:
        key = coerce_request_id(request_id)
        if _same(self._ids.get(key), request_id):
            del self._ids[key]

    def admits(self, message: JSONRPCNotification) -> bool:
        """Whether the dispatcher may see this notification: any but a cancel it would take for that of a request
        in flight whose id is another (the same number, of another type or spelt otherwise). A cancel naming no
        request known here passes: the dispatcher ignores it, or (over HTTP, once a request's POST has ended) it
        is the cancel of a request still running whose client has stopped listening."""
        named = _cancelled(message)
        if named is None:  # not a cancel, or one naming no id, which the dispatcher ignores too
            return True
        kept = self._ids.get(coerce_request_id(named))
        return kept is None or _same(kept, named)


def _cancelled(message: JSONRPCNotification) -> RequestId | None:
    return cancelled_request_id_from_params(message.params) if message.method == CANCELLED else None


def _same(kept: RequestId | None, sent: RequestId) -> bool:
    return kept is not None and type(kept) is type(sent) and kept == sent


def exact_cancels(read: Any, write: Any) -> tuple["_Reading", "_Writing"]:
    """The stream pair the dispatcher should use instead of `read` and `write`, keeping cancels exact."""
    in_flight = InFlight()
    return _Reading(read, in_flight), _Writing(write, in_flight)


class _Reading(ReadThrough):
    def __init__(self, inner: Any, in_flight: InFlight) -> None:
        super().__init__(inner)
        self._in_flight = in_flight

    async def receive(self) -> SessionMessage | Exception:
        while True:
            item = await self._inner.receive()
            if not isinstance(item, SessionMessage):
                return item  # type: ignore[no-any-return]
            message = item.message
            if isinstance(message, JSONRPCRequest):
                self._in_flight.start(message.id)
            if not isinstance(message, JSONRPCNotification):
                return item
            if self._in_flight.admits(message):
                if (named := _cancelled(message)) is not None:
                    self._in_flight.end(named)  # no answer will be written for it
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
