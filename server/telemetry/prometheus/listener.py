"""The metrics listener: `GET /metrics` on a loopback port of its own, answered from one thread of its own.

It shares nothing with the MCP transports (stdio, or HTTP on another port): one thread runs a `selectors` loop
over non-blocking sockets, so however many clients connect and however slowly they send or read, it never
blocks on one of them, and it never holds the event loop or a worker thread the calls use. What a client may
cost is bounded: a request's head is read up to `MAX_HEAD_BYTES`, a connection lives at most `CONNECTION_S`
from accept, and at most `MAX_CONNECTIONS` are open (a new one closes the oldest). Every connection gets one
answer (`Connection: close`); what the client sends after its request's head (a body) is read and dropped, up
to `MAX_DRAIN_BYTES`, until it closes. It writes nothing to stdout: the protocol may be there.
"""

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from server.telemetry.prometheus.registry import CONTENT_TYPE

__all__ = ["CONNECTION_S", "MAX_CONNECTIONS", "MAX_DRAIN_BYTES", "MAX_HEAD_BYTES", "MetricsListener", "bound"]

logger = logging.getLogger(__name__)

MAX_HEAD_BYTES = 8192
"""A request line and headers, at most: a scraper sends a few hundred bytes."""
CONNECTION_S = 5.0
"""From accept to the answer's last byte sent; then the connection is closed, whatever state it is in."""
MAX_CONNECTIONS = 32
"""Open at once; one more closes the connection that has been open longest."""
MAX_DRAIN_BYTES = 64 * 1024
"""What is read and dropped after an answer (a body never asked for) before the connection is closed anyway."""

_PATHS = frozenset({"/metrics"})
_METHODS = frozenset({"GET", "HEAD"})
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}


@dataclass(eq=False)
class _Connection:
    sock: socket.socket
    deadline: float
    received: bytearray = field(default_factory=bytearray)
    answer: bytes | None = None
    sent: int = 0
    drained: int = 0
    """Bytes read and dropped after the answer went (see `_drain`)."""


def bound(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port` as the listener binds it (the address's first family, SO_REUSEADDR), not yet
    listening: `doctor` binds one and closes it to learn whether the listener could start."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


class MetricsListener:
    """Listening once made (`open`), serving once started; `close()` (or the `with` block's end) stops both."""

    def __init__(self, listening: socket.socket, body: Callable[[], bytes]) -> None:
        self._listening = listening
        self._body = body
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = socket.socketpair()
        self._connections: dict[socket.socket, _Connection] = {}
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="planner-mcp metrics", daemon=True)

    @classmethod
    def open(cls, host: str, port: int, body: Callable[[], bytes]) -> "MetricsListener":
        """Bind `host:port` (port 0: any free port) and start answering; OSError when it cannot be bound."""
        listening = bound(host, port)
        try:
            listening.listen(64)
            listening.setblocking(False)
        except OSError:
            listening.close()
            raise
        listener = cls(listening, body)
        listener._thread.start()
        return listener

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listening.getsockname()[:2]
        return str(host), int(port)

    def close(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_write.send(b"x")
        self._thread.join(timeout=CONNECTION_S)

    def __enter__(self) -> "MetricsListener":
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- the loop ------------------------------------------------------------------------------------

    def _run(self) -> None:
        self._selector.register(self._listening, selectors.EVENT_READ)
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        try:
            while not self._stopping:
                for key, events in self._selector.select(self._wait_s()):
                    self._ready(key.fileobj, events)  # type: ignore[arg-type]
                self._expire()
        except Exception:
            logger.exception("The metrics listener stopped; MCP is served as before, without metrics")
        finally:
            for connection in list(self._connections.values()):
                self._drop(connection)
            self._selector.close()
            for sock in (self._listening, self._wake_read, self._wake_write):
                sock.close()

    def _wait_s(self) -> float | None:
        if not self._connections:
            return None
        nearest = min(c.deadline for c in self._connections.values())
        return max(0.0, nearest - time.monotonic())

    def _ready(self, sock: socket.socket, events: int) -> None:
        if sock is self._listening:
            self._accept()
        elif sock is self._wake_read:
            return
        elif (connection := self._connections.get(sock)) is not None:
            if events & selectors.EVENT_READ:
                self._read(connection)
            elif events & selectors.EVENT_WRITE:
                self._write(connection)

    def _expire(self) -> None:
        now = time.monotonic()
        for connection in [c for c in self._connections.values() if c.deadline <= now]:
            self._drop(connection)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listening.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors, say: the next select tries again
                logger.warning("The metrics listener could not accept a connection: %s", exc)
                return
            if len(self._connections) >= MAX_CONNECTIONS:
                self._drop(min(self._connections.values(), key=lambda c: c.deadline))
            sock.setblocking(False)
            connection = _Connection(sock, time.monotonic() + CONNECTION_S)
            self._connections[sock] = connection
            self._selector.register(sock, selectors.EVENT_READ)

    def _drop(self, connection: _Connection) -> None:
        self._connections.pop(connection.sock, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(connection.sock)
        connection.sock.close()

    def _read(self, connection: _Connection) -> None:
        if connection.answer is not None:
            self._drain(connection)
            return
        try:
            chunk = connection.sock.recv(MAX_HEAD_BYTES + 1 - len(connection.received))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(connection)  # closed before its request was whole: nothing to answer
            return
        connection.received += chunk
        if b"\r\n\r\n" in connection.received or b"\n\n" in connection.received:
            self._answer(connection, self._response(bytes(connection.received)))
        elif len(connection.received) > MAX_HEAD_BYTES:
            self._answer(connection, _plain(431, f"A request's head is read up to {MAX_HEAD_BYTES} bytes.\n"))

    def _answer(self, connection: _Connection, answer: bytes) -> None:
        connection.answer = answer
        self._selector.modify(connection.sock, selectors.EVENT_WRITE)
        self._write(connection)

    def _write(self, connection: _Connection) -> None:
        assert connection.answer is not None
        try:
            connection.sent += connection.sock.send(connection.answer[connection.sent :])
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            connection.sent = len(connection.answer)
        if connection.sent >= len(connection.answer):
            # Closing with unread bytes (a body, the rest of a head past the cap) would send a reset, which can
            # destroy the answer before the client reads it: say we are done, and read until the client closes.
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_WR)
            self._selector.modify(connection.sock, selectors.EVENT_READ)

    def _drain(self, connection: _Connection) -> None:
        """Read and drop what the client still sends after its answer, up to `MAX_DRAIN_BYTES`, until it closes."""
        try:
            chunk = connection.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        connection.drained += len(chunk)
        if not chunk or connection.drained > MAX_DRAIN_BYTES:
            self._drop(connection)

    def _response(self, head: bytes) -> bytes:
        request_line = head.split(b"\n", 1)[0].rstrip(b"\r")
        parts = request_line.split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return _plain(400, "Not an HTTP/1.x request.\n")
        method, target = parts[0].decode("ascii", "replace"), parts[1].decode("ascii", "replace")
        if target.split("?", 1)[0] not in _PATHS:
            return _plain(404, "Metrics are at /metrics.\n")
        if method not in _METHODS:
            return _plain(405, "Only GET and HEAD are answered.\n", ("Allow", "GET, HEAD"))
        try:
            body = self._body()
        except Exception:
            logger.exception("The metrics could not be rendered for a scrape")
            return _plain(500, "The metrics could not be rendered; the server's log says why.\n")
        return _message(200, CONTENT_TYPE, body, send_body=method == "GET")


def _plain(status: int, text: str, *headers: tuple[str, str]) -> bytes:
    return _message(status, "text/plain; charset=utf-8", text.encode(), headers=headers)


def _message(
    status: int, content_type: str, body: bytes, *, send_body: bool = True, headers: tuple[tuple[str, str], ...] = ()
) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {_REASONS[status]}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        "Cache-Control: no-store",
        *(f"{name}: {value}" for name, value in headers),
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    return head + body if send_body else head
