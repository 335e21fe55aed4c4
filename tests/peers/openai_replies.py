"""What the scripted OpenAI-compatible peer answers and records: its replies, and the requests it received.

A :class:`Reply` is one scripted answer to a chat completion (a completion, an error, a body sent verbatim, a
delayed or dripping one); a :class:`Recorded` is one request as :class:`tests.peers.openai_server.FakeOpenAI`
received it.
"""

import itertools
import json
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["Recorded", "Reply", "error_body", "schema_name"]

_ERROR_TYPES: Final[dict[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    422: "unprocessable_entity_error",
    429: "rate_limit_error",
}


_CALL_IDS: Final = itertools.count(1)
"""Tool call ids are unique in a process, as a model's are in a conversation (a framework refuses a reused one)."""


def schema_name(request: Any) -> str | None:
    """The name of the JSON schema a chat completion asks for (`response_format.json_schema.name`), if any."""
    if not isinstance(request, dict) or not isinstance(fmt := request.get("response_format"), dict):
        return None
    schema = fmt.get("json_schema")
    return schema.get("name") if isinstance(schema, dict) and isinstance(schema.get("name"), str) else None


def _default_usage() -> dict[str, Any]:
    return {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def error_body(
    status: int,
    message: str,
    *,
    error_type: str | None = None,
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    """An OpenAI-style error envelope."""
    if error_type is None:
        error_type = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


@dataclass(frozen=True)
class Reply:
    """One scripted answer to a ``POST /v1/chat/completions`` request.

    * ``status == 200`` and ``body is None``: a ``chat.completion`` whose single
      choice carries ``content`` (``None`` is sent as JSON ``null``) and
      ``finish_reason`` (e.g. ``"length"`` for a reply cut off at ``max_tokens``).
      ``content`` may be large (megabytes); it is sent with ``Content-Length``
      like any other body. ``tool_calls`` (see :meth:`calls`), when not empty,
      are the message's function calls, as a model that uses tools answers.
    * ``status != 200`` and ``body is None``: an OpenAI-style error envelope.
    * ``body`` given: sent verbatim whatever the status (a ``dict`` as JSON, a
      ``str`` as ``text/plain`` unless ``headers`` sets ``Content-Type``, ``bytes``
      as they are, e.g. compressed under a ``Content-Encoding`` header).

    ``delay`` seconds are waited before answering; ``FakeOpenAI.close()`` cuts
    the wait short and the connection is then dropped without an answer. If the
    client closes its connection during the delay, the reply is not sent and
    counts in ``FakeOpenAI.abandoned``.
    ``headers`` are added to (and override) the response headers, except
    ``Content-Length`` which is always computed.
    ``drip`` seconds are waited before each byte of the body (headers go at
    once): a reply that never quite arrives. A client that hangs up meanwhile
    counts in ``FakeOpenAI.abandoned``.
    """

    content: str | None = None
    status: int = 200
    body: dict[str, Any] | str | bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drip: float = 0.0
    usage: dict[str, Any] | None = field(default_factory=_default_usage)
    model: str | None = None
    finish_reason: str = "stop"
    tool_calls: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status code, got {self.status}")
        if self.delay < 0:
            raise ValueError(f"delay must be >= 0, got {self.delay}")

    @classmethod
    def text(cls, content: str, **kw: Any) -> "Reply":
        """A successful completion whose assistant message is ``content``."""
        return cls(content=content, **kw)

    @classmethod
    def calls(cls, *calls: tuple[str, Mapping[str, Any]], **kw: Any) -> "Reply":
        """A completion that asks the client to call functions: each ``(name, arguments)`` becomes one entry
        of the message's ``tool_calls`` (ids ``call_N``, never the same twice in a run; arguments as a JSON
        string, as OpenAI sends them), with ``content`` null and ``finish_reason`` ``"tool_calls"``."""
        tool_calls = tuple(
            {
                "id": f"call_{next(_CALL_IDS)}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            for name, arguments in calls
        )
        return cls(tool_calls=tool_calls, **{"finish_reason": "tool_calls", **kw})

    @classmethod
    def error(
        cls,
        status: int,
        message: str = "scripted error",
        *,
        error_type: str | None = None,
        code: str | None = None,
        **kw: Any,
    ) -> "Reply":
        """An error reply with an OpenAI-style body carrying ``message``."""
        body = error_body(status, message, error_type=error_type, code=code)
        return cls(status=status, body=body, **kw)

    @classmethod
    def gzip_bomb(cls, decoded_bytes: int, **kw: Any) -> "Reply":
        """A 200 whose gzip body is small and decodes to ``decoded_bytes`` of JSON whitespace."""
        packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        piece = b" " * 2**20
        packed = [packer.compress(piece) for _ in range(decoded_bytes // len(piece))]
        body = b"".join([*packed, packer.compress(b" " * (decoded_bytes % len(piece))), packer.flush()])
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        return cls(body=body, headers=headers, **kw)

    @classmethod
    def hang(cls, seconds: float, **kw: Any) -> "Reply":
        """Wait ``seconds`` (or until close()) before answering.

        If the wait runs out, the reply answers like any other (by default a
        completion with ``null`` content); pass ``content=...`` etc. to change it.
        """
        return cls(delay=seconds, **kw)


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it.

    ``headers`` has lowercased names (repeated headers are joined with
    ``", "``); ``json`` is the parsed body, or ``None`` if the body was empty
    or not JSON; ``body`` is the raw bytes. ``path`` excludes the query
    string, which is kept in ``query``. ``received_at`` is the
    ``time.monotonic()`` at which the request had been read, so tests can
    assert how long a client waited between two requests (e.g. for
    ``Retry-After``); it defaults to the time of construction.
    """

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    body: bytes
    query: str = ""
    received_at: float = field(default_factory=time.monotonic)

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), or ``None``."""
        return self.headers.get(name.lower())
