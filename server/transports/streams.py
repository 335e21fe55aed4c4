"""Streams that stand between a transport and the SDK's dispatcher, each changing what passes one way.

A subclass says what its `receive` (or `send`) does; the rest of the stream protocols the dispatcher uses (closing,
iterating, the context the sender ran in) is passed on to the stream it wraps, here.
"""

from types import TracebackType
from typing import Any, Self

import anyio
from mcp.shared.message import SessionMessage

__all__ = ["ReadThrough", "WriteThrough"]


class _Through:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        await self.aclose()
        return None


class ReadThrough(_Through):
    """A read stream over another: `receive` passes every item on, unless a subclass says otherwise."""

    @property
    def last_context(self) -> Any:
        # The dispatcher runs each message in the context it was sent in, when the stream keeps one.
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        return await self._inner.receive()  # type: ignore[no-any-return]

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None


class WriteThrough(_Through):
    """A write stream over another: `send` passes every item on, unless a subclass says otherwise."""

    async def send(self, item: SessionMessage, /) -> None:
        await self._inner.send(item)
