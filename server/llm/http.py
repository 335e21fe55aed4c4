"""The HTTP client the openai SDK is given: redirects are not followed, and a reply is read up to a cap.

The SDK's own client follows redirects, and a 307 or 308 sends the request body again, wherever it points:
the prompt, with the runbooks and inventory it carries. The endpoint is the one the operator configured, so
a redirect is refused instead (the caller gets the status and fixes OPENAI_BASE_URL).

httpx decodes `Content-Encoding` as it reads and keeps the whole decoded body: a small gzip reply can decode to
gigabytes. So each response's stream is replaced, before anything reads it, by one that decodes it in bounded
pieces and stops once the decoded bytes pass the cap. It is done in a response hook rather than a transport, so
the proxies httpx takes from the environment (HTTPS_PROXY) still apply. Imported with `openai`, on first use.
"""

from collections.abc import AsyncIterator
from typing import Any

import httpx2

from server.llm.errors import ReplyTooLarge

__all__ = ["MAX_REPLY_BYTES", "http_client"]

MAX_REPLY_BYTES = 8 * 1024 * 1024
"""The most of one reply that is read, decoded: far more than any chat completion (or error) holds."""


def http_client(timeout_s: float, *, cap: int = MAX_REPLY_BYTES) -> httpx2.AsyncClient:
    """An httpx client with the SDK's defaults (connection limits, proxies from the environment), except that
    it follows no redirect and reads no more than `cap` decoded bytes of a reply."""
    from openai import DefaultAsyncHttpxClient

    async def capped(response: httpx2.Response) -> None:
        _cap(response, cap)

    return DefaultAsyncHttpxClient(timeout=timeout_s, follow_redirects=False, event_hooks={"response": [capped]})


def _cap(response: httpx2.Response, cap: int) -> None:
    """Make `response` read its body decoded and counted: httpx then has nothing left to decode."""
    encoded = httpx2.Response(response.status_code, headers=response.headers, stream=response.stream)
    response.stream = _Capped(encoded, response.stream, cap)
    if "content-encoding" in response.headers:
        del response.headers["content-encoding"]


class _Capped(httpx2.AsyncByteStream):
    """The decoded body of `encoded`, refused past `cap` bytes; closing it closes the connection's stream."""

    def __init__(self, encoded: httpx2.Response, raw: Any, cap: int) -> None:
        self._encoded = encoded
        self._raw = raw
        self._cap = cap

    @property
    def elapsed(self) -> Any:
        return getattr(self._raw, "elapsed", None)  # httpx reads a response's elapsed time from its stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        read = 0
        # httpx's decoders yield a compressed chunk's output in pieces of bounded size, so the cap is checked
        # before much more than it is held.
        async for piece in self._encoded.aiter_bytes():
            read += len(piece)
            if read > self._cap:
                raise ReplyTooLarge(self._cap)
            yield piece

    async def aclose(self) -> None:
        await self._encoded.aclose()
