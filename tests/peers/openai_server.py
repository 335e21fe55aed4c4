"""A scripted, OpenAI-compatible HTTP server for tests.

Why this exists: planner-mcp's tests must exercise the real ``openai`` client
over real HTTP (connection pool, headers, status-code to exception mapping,
timeouts) instead of mocking the client. ``FakeOpenAI`` is that peer: it binds
an ephemeral port on 127.0.0.1, answers ``POST /v1/chat/completions`` from a
queue of scripted :class:`Reply` objects (falling back to a default reply),
serves ``GET /v1/models``, and records every request it receives so tests can
assert on what the client actually sent.

It can also play the parts of a real endpoint that a client must cope with:
refusing a wrong API key (``api_key=``), refusing ``response_format`` like an
endpoint without structured outputs (``response_format=False``), and noticing
when a client gives up on a delayed reply and closes its connection
(:attr:`FakeOpenAI.abandoned`), which is how a test proves that cancelling a
call on the client side really stops the upstream request.

It uses only the standard library (the threaded server in
:mod:`tests.peers.loopback`) so it adds no dependency and no event loop of its
own. It speaks HTTP/1.1 with keep-alive and always sends ``Content-Length``, so
the client's connection pool reuses connections exactly as it would in production.

Typical use::

    with FakeOpenAI(default=Reply.text("fallback")) as llm:
        llm.enqueue(Reply.text("hello"), Reply.error(429, headers={"Retry-After": "1"}))
        client = openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
        ...
        assert llm.chat_requests[0].json["model"] == "test-model"
"""

import json
import select
import socket
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Literal, Self, cast

from tests.peers.loopback import LoopbackHandler, LoopbackHTTPServer

__all__ = ["FakeOpenAI", "Recorded", "Reply"]

CHAT_COMPLETIONS_PATH: Final = "/v1/chat/completions"
MODELS_PATH: Final = "/v1/models"
# How often a delayed reply checks whether its client hung up; small so a
# cancelled call is noticed promptly, large enough not to spin.
DISCONNECT_POLL_INTERVAL: Final = 0.02

# How a delayed reply's wait ended: the delay ran out, close() interrupted it,
# or the client closed its connection first.
_WaitOutcome = Literal["elapsed", "closing", "client_gone"]

_ERROR_TYPES: Final[dict[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    422: "unprocessable_entity_error",
    429: "rate_limit_error",
}


def _schema_name(request: Any) -> str | None:
    """The name of the JSON schema a chat completion asks for (`response_format.json_schema.name`), if any."""
    if not isinstance(request, dict) or not isinstance(fmt := request.get("response_format"), dict):
        return None
    schema = fmt.get("json_schema")
    return schema.get("name") if isinstance(schema, dict) and isinstance(schema.get("name"), str) else None


def _default_usage() -> dict[str, Any]:
    return {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def _error_body(
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
      like any other body.
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
        body = _error_body(status, message, error_type=error_type, code=code)
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


class FakeOpenAI:
    """An OpenAI-compatible server on ``127.0.0.1:<ephemeral port>``.

    The server starts listening in the constructor; use it as a context
    manager (or call :meth:`close`) to stop it. All methods are thread-safe.

    ``api_key``: if set, every request whose ``Authorization`` header is not
    exactly ``Bearer <api_key>`` is recorded but answered 401, as OpenAI does,
    without using a queued reply. ``response_format=False``: a chat completion
    request that carries ``response_format`` is answered 400, as by an endpoint
    without structured outputs, without using a queued reply. Both are also
    mutable attributes (``api_key``, ``supports_response_format``), so a test
    can rotate the key or change the endpoint's abilities mid-way.

    ``by_schema``: with nothing queued, a request whose ``response_format``
    names a JSON schema (``json_schema.name``) found here gets that reply,
    so one peer can answer each kind of request in its own shape; any other
    request gets ``default``.
    """

    def __init__(
        self,
        *,
        default: Reply | None = None,
        models: Iterable[str] = ("test-model",),
        api_key: str | None = None,
        response_format: bool = True,
        by_schema: Mapping[str, Reply] | None = None,
    ) -> None:
        self.default: Reply | None = default
        self.by_schema: dict[str, Reply] = dict(by_schema or {})
        self.models: list[str] = list(models)
        self.api_key: str | None = api_key
        self.supports_response_format: bool = response_format
        self._lock = threading.Condition()
        self._queue: deque[Reply] = deque()
        self._records: list[Recorded] = []
        self._abandoned = 0
        self._completion_ids = 0
        self._closed = False
        self._httpd = _Server(self)
        self.host: str = str(self._httpd.server_address[0])
        self.port: int = self._httpd.port
        self._httpd.start()

    # -- lifecycle ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The ``base_url`` to give the openai client, ending in ``/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving, wake hanging handlers and drop open connections.

        Idempotent; returns within about two seconds even if clients keep
        connections open or replies are still delayed.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._httpd.stop()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def connections_accepted(self) -> int:
        """How many TCP connections were accepted (keep-alive keeps this low)."""
        return self._httpd.accepted

    # -- scripting ---------------------------------------------------------

    def enqueue(self, *replies: Reply) -> None:
        """Append replies to the queue; each chat completion request pops one."""
        for reply in replies:
            if not isinstance(reply, Reply):
                raise TypeError(f"expected Reply, got {type(reply).__name__}")
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """How many queued replies have not been used yet."""
        with self._lock:
            return len(self._queue)

    def reset(self) -> None:
        """Clear the reply queue, the recorded requests and the :attr:`abandoned` count."""
        with self._lock:
            self._queue.clear()
            self._records.clear()
            self._abandoned = 0

    # -- inspection --------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        """A snapshot of every request received, oldest first."""
        with self._lock:
            return list(self._records)

    @property
    def chat_requests(self) -> list[Recorded]:
        """The recorded ``POST /v1/chat/completions`` requests."""
        return [r for r in self.requests if r.method == "POST" and r.path == CHAT_COMPLETIONS_PATH]

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[Recorded]:
        """Block until at least ``count`` requests were recorded; raise ``TimeoutError`` after ``timeout``."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._records) >= count, timeout=timeout):
                raise TimeoutError(f"expected {count} request(s) within {timeout}s, got {len(self._records)}")
            return list(self._records)

    @property
    def abandoned(self) -> int:
        """How many delayed replies were not sent because the client closed its connection first.

        This is what shows that a client really stopped an upstream request
        (cancelled it, timed out) instead of leaving it running. A wait cut
        short by :meth:`close` does not count.
        """
        with self._lock:
            return self._abandoned

    def wait_for_abandoned(self, count: int, timeout: float = 5.0) -> int:
        """Block until :attr:`abandoned` is at least ``count`` and return it; ``TimeoutError`` after ``timeout``."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._abandoned >= count, timeout=timeout):
                raise TimeoutError(f"expected {count} abandoned reply(s) within {timeout}s, got {self._abandoned}")
            return self._abandoned

    # -- used by the handler -----------------------------------------------

    def _record(self, recorded: Recorded) -> None:
        with self._lock:
            self._records.append(recorded)
            self._lock.notify_all()

    def _count_abandoned(self) -> None:
        with self._lock:
            self._abandoned += 1
            self._lock.notify_all()

    def _next_reply(self, schema: str | None = None) -> Reply | None:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            return self.by_schema.get(schema or "", self.default)

    def _next_completion_id(self) -> str:
        with self._lock:
            self._completion_ids += 1
            return f"chatcmpl-fake-{self._completion_ids}"

    def _wait(self, seconds: float, client_gone: Callable[[], bool]) -> _WaitOutcome:
        """Wait up to ``seconds``, polling ``client_gone`` every :data:`DISCONNECT_POLL_INTERVAL`.

        Ends early with ``"closing"`` if close() began, or ``"client_gone"`` if
        the client hung up. close() is checked first and again after a hang-up,
        because stopping shuts the server's side of every connection down,
        which looks like a hang-up from here.
        """
        stopping = self._httpd.stopping
        deadline = time.monotonic() + seconds
        while True:
            if stopping.is_set():
                return "closing"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "elapsed"
            if stopping.wait(min(DISCONNECT_POLL_INTERVAL, remaining)):
                return "closing"
            if client_gone():
                return "closing" if stopping.is_set() else "client_gone"


class _Server(LoopbackHTTPServer):
    def __init__(self, owner: FakeOpenAI) -> None:
        self.owner = owner
        super().__init__(0, _Handler, name="FakeOpenAI")


class _Handler(LoopbackHandler):
    server_version = "FakeOpenAI/1.0"

    @property
    def _owner(self) -> FakeOpenAI:
        return cast(_Server, self.server).owner

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # -- request handling --------------------------------------------------

    def _dispatch(self) -> None:
        try:
            raw = self._read_body()
        except ValueError as exc:
            self.close_connection = True
            self._send_json(400, _error_body(400, f"FakeOpenAI: unreadable request body: {exc}"))
            return
        path, _, query = self.path.partition("?")
        headers = self.lowercase_headers()
        parsed: Any = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
        received_at = time.monotonic()
        self._owner._record(
            Recorded(
                method=self.command,
                path=path,
                headers=headers,
                json=parsed,
                body=raw,
                query=query,
                received_at=received_at,
            )
        )

        api_key = self._owner.api_key
        if api_key is not None and headers.get("authorization") != f"Bearer {api_key}":
            # OpenAI's own answer to a wrong or missing key, on every route.
            body = _error_body(
                401, "Incorrect API key provided", error_type="invalid_request_error", code="invalid_api_key"
            )
            self._send_json(401, body)
        elif path == CHAT_COMPLETIONS_PATH:
            if self.command != "POST":
                self._send_json(405, _error_body(405, f"FakeOpenAI: use POST for {path}"))
            else:
                self._chat_completion(parsed)
        elif path == MODELS_PATH and self.command == "GET":
            created = int(time.time())
            data = [self._model_object(m, created) for m in self._owner.models]
            self._send_json(200, {"object": "list", "data": data})
        elif path.startswith(MODELS_PATH + "/") and self.command == "GET":
            model_id = path[len(MODELS_PATH) + 1 :]
            if model_id in self._owner.models:
                self._send_json(200, self._model_object(model_id, int(time.time())))
            else:
                message = f"The model '{model_id}' does not exist"
                self._send_json(404, _error_body(404, message, code="model_not_found"))
        else:
            message = f"FakeOpenAI: no route for {self.command} {path}"
            self._send_json(404, _error_body(404, message, code="unknown_url"))

    def _chat_completion(self, request: Any) -> None:
        if isinstance(request, dict) and request.get("stream"):
            message = "FakeOpenAI does not support stream=true"
            self._send_json(400, _error_body(400, message, code="stream_unsupported"))
            return
        if not self._owner.supports_response_format and isinstance(request, dict) and "response_format" in request:
            # What an endpoint without structured outputs answers; the client's fallback is under test.
            message = "response_format is not supported by this model"
            self._send_json(400, _error_body(400, message, param="response_format"))
            return
        reply = self._owner._next_reply(_schema_name(request))
        if reply is None:
            message = (
                f"FakeOpenAI: no scripted reply queued for POST {CHAT_COMPLETIONS_PATH} and no default "
                "reply configured; call enqueue(Reply...) or pass FakeOpenAI(default=...)"
            )
            self._send_json(500, _error_body(500, message, error_type="fake_openai_error", code="queue_empty"))
            return
        outcome = self._owner._wait(reply.delay, self._client_gone)
        if outcome != "elapsed":
            # close() was called, or the client hung up, while this reply was
            # being delayed: drop the connection without answering so the
            # handler ends promptly. Only a hang-up is the client's doing.
            self.close_connection = True
            if outcome == "client_gone":
                self._owner._count_abandoned()
            return

        if reply.drip:
            self._drip(reply)
            return
        if reply.body is not None:
            self._send_verbatim(reply, reply.body)
            return
        if reply.status != 200:
            body = _error_body(reply.status, f"FakeOpenAI scripted error (HTTP {reply.status})")
            self._send_json(reply.status, body, reply.headers)
            return

        requested = request.get("model") if isinstance(request, dict) else None
        model = reply.model or (requested if isinstance(requested, str) else None) or "test-model"
        completion: dict[str, Any] = {
            "id": self._owner._next_completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
            ],
        }
        if reply.usage is not None:
            completion["usage"] = reply.usage
        self._send_json(200, completion, reply.headers)

    def _send_verbatim(self, reply: Reply, body: dict[str, Any] | str | bytes) -> None:
        if isinstance(body, bytes):
            self._send(reply.status, body, "application/octet-stream", reply.headers)
        elif isinstance(body, str):
            self._send(reply.status, body.encode(), "text/plain; charset=utf-8", reply.headers)
        else:
            self._send_json(reply.status, body, reply.headers)

    def _drip(self, reply: Reply) -> None:
        """Send the headers of a completion of ``reply.content``, then its body a byte at a time, ``reply.drip``
        seconds apart, until it is all sent, close() is called or the client hangs up."""
        body = json.dumps({"id": "chatcmpl-drip", "object": "chat.completion", "content": reply.content}).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.flush()
            for byte in body:
                if (outcome := self._owner._wait(reply.drip, self._client_gone)) != "elapsed":
                    self.close_connection = True
                    if outcome == "client_gone":
                        self._owner._count_abandoned()
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
        except OSError:
            self.close_connection = True
            self._owner._count_abandoned()

    def _client_gone(self) -> bool:
        """Whether the client closed its connection (EOF or an error on the socket).

        Peeks, so a byte the client sent ahead (a pipelined request) stays
        unread for the next request; such a client counts as still there. A
        client that only half-closes (``SHUT_WR``) counts as gone; HTTP clients
        that still want their answer do not do that.
        """
        sock = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):  # ValueError: the socket was already closed (fileno -1)
            return True

    @staticmethod
    def _model_object(model_id: str, created: int) -> dict[str, Any]:
        return {"id": model_id, "object": "model", "created": created, "owned_by": "fake-openai"}

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size_field = self.rfile.readline(1024).split(b";", 1)[0].strip()
                size = int(size_field, 16)  # ValueError on garbage, reported as 400
                if size == 0:
                    # Skip trailers up to the blank line ending the message.
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length) if length else b""

    # -- response writing --------------------------------------------------

    def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers or {})

    def _send(self, status: int, payload: bytes, content_type: str, headers: dict[str, str]) -> None:
        merged = {"content-type": ("Content-Type", content_type)}
        merged.update((name.lower(), (name, value)) for name, value in headers.items())
        merged.pop("content-length", None)  # always computed by respond()
        self.respond(status, merged.values(), payload)
