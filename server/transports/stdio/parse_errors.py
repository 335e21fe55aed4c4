"""Lines on stdin that are not JSON-RPC get a JSON-RPC error, as the spec asks, rather than silence.

The SDK's stdio transport hands a line it cannot decode to the session as an exception, and the session drops
it with a debug log: a host that sent a request the server could not read then waits for its own timeout. This
read stream answers such a line with `-32700 Parse error` (not JSON) or `-32600 Invalid Request` (JSON, but not
a JSON-RPC message), with `id: null` since no id could be read, and passes every other message through.
"""

from typing import Any

from mcp.shared.message import SessionMessage
from mcp.types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
from pydantic import ValidationError

from server.transports.streams import ReadThrough

__all__ = ["AnsweringParseErrors"]


class AnsweringParseErrors(ReadThrough):
    """A read stream over the transport's that answers undecodable lines on the transport's write stream."""

    def __init__(self, inner: Any, write: Any) -> None:
        super().__init__(inner)
        self._write = write

    async def receive(self) -> SessionMessage | Exception:
        while True:
            item = await self._inner.receive()
            if not isinstance(item, Exception):
                return item  # type: ignore[no-any-return]
            if (error := _error_for(item)) is not None:
                await self._write.send(SessionMessage(error))


def _error_for(exc: Exception) -> JSONRPCError | None:
    """The answer to an undecodable line; None for a blank one, which is no message at all."""
    if not isinstance(exc, ValidationError):
        return _answer(PARSE_ERROR, "Parse error: the line could not be read.")
    errors = exc.errors(include_url=False)
    if any(e["type"] == "json_invalid" for e in errors):
        if all(isinstance(e.get("input"), str) and not e["input"].strip() for e in errors):
            return None
        return _answer(PARSE_ERROR, "Parse error: the line is not a JSON text.")
    return _answer(INVALID_REQUEST, "Invalid Request: the JSON is not a JSON-RPC 2.0 request or notification.")


def _answer(code: int, message: str) -> JSONRPCError:
    return JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(code=code, message=message))
