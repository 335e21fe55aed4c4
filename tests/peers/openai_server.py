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

It uses only the standard library (the threaded server and the peer's life
in :mod:`tests.peers.loopback`; replies in :mod:`tests.peers.openai_replies`)
so it adds no dependency and no event loop of its own. It speaks HTTP/1.1
with keep-alive and always sends ``Content-Length``, so the client's connection
pool reuses connections exactly as it would in production.

Typical use::

    with FakeOpenAI(default=Reply.text("fallback")) as llm:
        llm.enqueue(Reply.text("hello"), Reply.error(429, headers={"Retry-After": "1"}))
        client = openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
        ...
        assert llm.chat_requests[0].json["model"] == "test-model"
"""

import json
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, Final, cast

from tests.peers.loopback import LoopbackHandler, LoopbackPeer
from tests.peers.openai_replies import Recorded, Reply, error_body, schema_name

__all__ = ["FakeOpenAI", "Recorded", "Reply"]

CHAT_COMPLETIONS_PATH: Final = "/v1/chat/completions"
MODELS_PATH: Final = "/v1/models"


class FakeOpenAI(LoopbackPeer[Recorded]):
    """An OpenAI-compatible server on ``127.0.0.1:<ephemeral port>``.

    The server starts listening in the constructor; use it as a context
    manager (or call :meth:`close`) to stop it. All methods are thread-safe.
    The life around the server (start, stop, close) and the recorded requests
    are :class:`tests.peers.loopback.LoopbackPeer`'s.

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
        super().__init__()
        self._queue: deque[Reply] = deque()
        self._abandoned = 0
        self._completion_ids = 0
        self.host = "127.0.0.1"
        self.start()

    @property
    def base_url(self) -> str:
        """The ``base_url`` to give the openai client, ending in ``/v1``."""
        return f"{self.addr}/v1"

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
    def chat_requests(self) -> list[Recorded]:
        """The recorded ``POST /v1/chat/completions`` requests."""
        return [r for r in self.requests if r.method == "POST" and r.path == CHAT_COMPLETIONS_PATH]

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


class _Handler(LoopbackHandler):
    server_version = "FakeOpenAI/1.0"

    @property
    def _owner(self) -> "FakeOpenAI":
        return cast(FakeOpenAI, cast(Any, self.server).peer)

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
            raw = self.read_body()
        except ValueError as exc:
            self.close_connection = True
            self._send_json(400, error_body(400, f"FakeOpenAI: unreadable request body: {exc}"))
            return
        path, _, query = self.path.partition("?")
        headers = self.lowercase_headers()
        parsed = self.json_or_none(raw)
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
            body = error_body(
                401, "Incorrect API key provided", error_type="invalid_request_error", code="invalid_api_key"
            )
            self._send_json(401, body)
        elif path == CHAT_COMPLETIONS_PATH:
            if self.command != "POST":
                self._send_json(405, error_body(405, f"FakeOpenAI: use POST for {path}"))
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
                self._send_json(404, error_body(404, message, code="model_not_found"))
        else:
            message = f"FakeOpenAI: no route for {self.command} {path}"
            self._send_json(404, error_body(404, message, code="unknown_url"))

    def _chat_completion(self, request: Any) -> None:
        if isinstance(request, dict) and request.get("stream"):
            message = "FakeOpenAI does not support stream=true"
            self._send_json(400, error_body(400, message, code="stream_unsupported"))
            return
        if not self._owner.supports_response_format and isinstance(request, dict) and "response_format" in request:
            # What an endpoint without structured outputs answers; the client's fallback is under test.
            message = "response_format is not supported by this model"
            self._send_json(400, error_body(400, message, param="response_format"))
            return
        reply = self._owner._next_reply(schema_name(request))
        if reply is None:
            message = (
                f"FakeOpenAI: no scripted reply queued for POST {CHAT_COMPLETIONS_PATH} and no default "
                "reply configured; call enqueue(Reply...) or pass FakeOpenAI(default=...)"
            )
            self._send_json(500, error_body(500, message, error_type="fake_openai_error", code="queue_empty"))
            return
        outcome = self.pause(reply.delay)
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
            body = error_body(reply.status, f"FakeOpenAI scripted error (HTTP {reply.status})")
            self._send_json(reply.status, body, reply.headers)
            return

        self._send_json(200, self._completion(reply, request), reply.headers)

    def _completion(self, reply: Reply, request: Any) -> dict[str, Any]:
        """The ``chat.completion`` body of a successful ``reply`` to ``request``."""
        requested = request.get("model") if isinstance(request, dict) else None
        model = reply.model or (requested if isinstance(requested, str) else None) or "test-model"
        answer: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
        if reply.tool_calls:
            answer["tool_calls"] = list(reply.tool_calls)
        completion: dict[str, Any] = {
            "id": self._owner._next_completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": answer,
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
            ],
        }
        if reply.usage is not None:
            completion["usage"] = reply.usage
        return completion

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
                if (outcome := self.pause(reply.drip)) != "elapsed":
                    self.close_connection = True
                    if outcome == "client_gone":
                        self._owner._count_abandoned()
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
        except OSError:
            self.close_connection = True
            self._owner._count_abandoned()

    @staticmethod
    def _model_object(model_id: str, created: int) -> dict[str, Any]:
        return {"id": model_id, "object": "model", "created": created, "owned_by": "fake-openai"}

    # -- response writing --------------------------------------------------

    def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers or {})

    def _send(self, status: int, payload: bytes, content_type: str, headers: dict[str, str]) -> None:
        merged = {"content-type": ("Content-Type", content_type)}
        merged.update((name.lower(), (name, value)) for name, value in headers.items())
        merged.pop("content-length", None)  # always computed by respond()
        self.respond(status, merged.values(), payload)


FakeOpenAI.handler = _Handler
