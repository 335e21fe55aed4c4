"""The threaded loopback HTTP server under the test peers (FakeOpenAI, FakeVault, the JWKS issuer).

Why this exists: each peer needs the same plumbing, an HTTP/1.1 keep-alive server on 127.0.0.1 in daemon threads
that stops promptly and completely, even while a client keeps pooled connections open or a handler is still
waiting. The standard library's ``ThreadingHTTPServer`` does not do that on its own: an idle keep-alive handler
blocks until the client goes away. So :class:`LoopbackHTTPServer` tracks every open connection and handler thread,
and :meth:`LoopbackHTTPServer.stop` drops the connections and joins the threads within a deadline.
:class:`LoopbackHandler` holds the handler parts the peers share (reading a request, waiting while noticing a
client that hangs up, writing an answer), and :class:`LoopbackPeer` the life of a peer around its server:
listening, stopping and listening again on the same port, closing for good, and keeping every request it
received. What a peer answers stays in the peer's own module.
"""

import contextlib
import json
import select
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Final, Generic, Literal, Self, TypeVar, cast

__all__ = ["LoopbackHTTPServer", "LoopbackHandler", "LoopbackPeer", "Pause"]

# How long stop() waits, in total, for the serving and handler threads.
CLOSE_JOIN_TIMEOUT: Final = 2.0
# How often serve_forever() checks for shutdown; small so stop() is prompt.
POLL_INTERVAL: Final = 0.05

# How often a pause checks whether its client hung up; small so a cancelled call is noticed promptly,
# large enough not to spin.
DISCONNECT_POLL_INTERVAL: Final = 0.02
# A client that connects but never finishes the TLS handshake is dropped after this.
HANDSHAKE_TIMEOUT: Final = 5.0

_Socket = TypeVar("_Socket", bound=socket.socket)
_Recorded = TypeVar("_Recorded")

Pause = Literal["elapsed", "closing", "client_gone"]
"""How a handler's pause ended: the time ran out, the server began to stop, or the client closed its connection."""


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer on ``127.0.0.1:<port>`` that tracks its connections and handler threads.

    It listens from the constructor (``port`` 0 picks a free one); :meth:`start` serves in a daemon thread and
    :meth:`stop` ends everything. ``stopping`` is set when :meth:`stop` begins, so handlers that wait can give
    up early. Subclasses may override :meth:`setup_connection`, e.g. for TLS.
    """

    daemon_threads = True
    block_on_close = False

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler], *, name: str) -> None:
        self.name = name
        self.stopping = threading.Event()
        self.accepted = 0  # TCP connections accepted so far
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._handlers: set[threading.Thread] = set()
        self._dropping = False
        self._serve_thread: threading.Thread | None = None
        super().__init__(("127.0.0.1", port), handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._serve_thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name=f"{self.name}:{self.port}",
            daemon=True,
        )
        self._serve_thread.start()

    def stop(self) -> None:
        """Stop serving, drop open connections, close the port and join the threads, within about
        :data:`CLOSE_JOIN_TIMEOUT` seconds even if clients keep connections open. Call it once."""
        deadline = time.monotonic() + CLOSE_JOIN_TIMEOUT
        self.stopping.set()
        if self._serve_thread is not None:  # shutdown() would wait forever for a serve_forever() never run
            self.shutdown()
            self._serve_thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._drop_connections()
        self.server_close()
        with self._conn_lock:
            handlers = list(self._handlers)
        for thread in handlers:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def setup_connection(self, sock: socket.socket) -> socket.socket | None:
        """Run in the connection's own thread before any HTTP; return the socket to serve, or None to drop it."""
        return sock

    def replace_connection(self, sock: socket.socket, wrap: Callable[[socket.socket], _Socket]) -> _Socket | None:
        """Track ``wrap(sock)`` instead of ``sock`` (which ``wrap`` takes over, as ``SSLContext.wrap_socket``
        does), unless :meth:`stop` is dropping connections: then ``sock`` is closed and None returned."""
        with self._conn_lock:
            self._connections.discard(sock)
            if self._dropping:
                sock.close()
                return None
            wrapped = wrap(sock)
            self._connections.add(wrapped)
            return wrapped

    def forget_connection(self, sock: socket.socket) -> None:
        """Stop tracking ``sock``, e.g. before closing it in :meth:`setup_connection`."""
        with self._conn_lock:
            self._connections.discard(sock)

    def process_request(self, request: Any, client_address: Any) -> None:
        sock = cast(socket.socket, request)
        with self._conn_lock:
            if self._dropping:
                self.shutdown_request(sock)
                return
            self._connections.add(sock)
            self.accepted += 1
            thread = threading.Thread(
                target=self._serve_connection,
                args=(sock, client_address),
                name=f"{self.name}-conn:{client_address}",
                daemon=True,
            )
            self._handlers.add(thread)
        thread.start()

    def _serve_connection(self, sock: socket.socket, client_address: Any) -> None:
        conn: socket.socket | None = sock
        try:
            conn = self.setup_connection(sock)
            if conn is not None:
                self.process_request_thread(conn, client_address)
        finally:
            with self._conn_lock:
                self._connections.discard(conn or sock)
                self._handlers.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out or closed its pooled connection is normal
        # here; anything else is a bug in the peer and keeps the default report.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def _drop_connections(self) -> None:
        """Shut down every open connection so idle keep-alive handlers exit."""
        with self._conn_lock:
            self._dropping = True
            connections = list(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                # The plain socket's shutdown: a TLS socket's state belongs to its handler thread.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class LoopbackHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, no logging to stderr, and a response writer that tolerates a vanished client."""

    protocol_version = "HTTP/1.1"
    sys_version = ""
    # Headers and body leave in separate writes; with Nagle on, the body waits for the client's delayed
    # ACK (40 ms on Linux), which would make every loopback round trip look 40 ms slow.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request logging to stderr."""

    def lowercase_headers(self) -> dict[str, str]:
        """The request headers with lowercased names; repeated headers are joined with ``", "``."""
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return headers

    def respond(self, status: int, headers: Iterable[tuple[str, str]], payload: bytes) -> None:
        """Send ``status``, ``headers``, a computed ``Content-Length`` and ``payload`` (not for HEAD)."""
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            # The client went away (e.g. it timed out first); nothing to answer.
            self.close_connection = True

    @property
    def peer(self) -> Any:
        """The :class:`LoopbackPeer` this handler serves."""
        return cast(_PeerServer, self.server).peer

    @property
    def stopping(self) -> threading.Event:
        """Set once the server began to stop: a handler that waits gives up then."""
        return cast(LoopbackHTTPServer, self.server).stopping

    def pause(self, seconds: float) -> Pause:
        """Wait up to ``seconds``, checking every :data:`DISCONNECT_POLL_INTERVAL` whether the client hung up.

        Ends early with ``"closing"`` if the server began to stop, or ``"client_gone"`` if the client hung up.
        Stopping is checked first and again after a hang-up, because stopping shuts the server's side of every
        connection down, which looks like a hang-up from here.
        """
        stopping = self.stopping
        deadline = time.monotonic() + seconds
        while True:
            if stopping.is_set():
                return "closing"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "elapsed"
            if stopping.wait(min(DISCONNECT_POLL_INTERVAL, remaining)):
                return "closing"
            if self.client_gone():
                return "closing" if stopping.is_set() else "client_gone"

    def client_gone(self) -> bool:
        """Whether the client closed its connection (EOF or an error on the socket).

        Peeks, so a byte the client sent ahead (a pipelined request) stays unread for the next request; such a
        client counts as still there. A client that only half-closes (``SHUT_WR``) counts as gone; HTTP clients
        that still want their answer do not do that.
        """
        sock = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):  # ValueError: the socket was already closed (fileno -1)
            return True

    def read_body(self) -> bytes:
        """The request's body, by ``Content-Length`` or chunked; ValueError on a length or chunk size that is not
        a number, or a negative length."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline(1024).split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):  # trailers, to the blank line
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length) if length else b""

    @staticmethod
    def json_or_none(raw: bytes) -> Any:
        """The body parsed as JSON, or None if it is empty or not JSON."""
        with contextlib.suppress(ValueError):
            return json.loads(raw) if raw else None
        return None


class _PeerServer(LoopbackHTTPServer):
    """A peer's server: its handler finds the peer as ``server.peer``; with the peer's ``ssl_context`` the TLS
    handshake runs in each connection's own thread, so a client that rejects the certificate neither blocks nor
    crashes the server."""

    allow_reuse_address = True  # so start() can bind the same port again right after stop()

    def __init__(self, peer: "LoopbackPeer[Any]", port: int) -> None:
        self.peer = peer
        super().__init__(port, peer.handler, name=type(peer).__name__)

    def setup_connection(self, sock: socket.socket) -> socket.socket | None:
        """Wrap an accepted socket in TLS; if the handshake fails, close it quietly and return None."""
        context = self.peer.ssl_context
        if context is None:
            return sock
        tls = self.replace_connection(
            sock, lambda plain: context.wrap_socket(plain, server_side=True, do_handshake_on_connect=False)
        )
        if tls is None:
            return None
        try:
            tls.settimeout(HANDSHAKE_TIMEOUT)
            tls.do_handshake()
            tls.settimeout(None)
        except OSError:  # includes ssl.SSLError: the client rejected us, spoke plain HTTP, or went away
            self.forget_connection(tls)
            tls.close()
            return None
        return tls


class LoopbackPeer(Generic[_Recorded]):
    """A peer on ``127.0.0.1:<ephemeral port>``: its life around its server, and the requests it received.

    Nothing listens until :meth:`start` (``__enter__`` calls it); the port is chosen then and reused by every
    later :meth:`start`, so a test can take the peer away and bring it back with its state intact. A subclass
    names its ``handler``, which finds the peer as ``server.peer``. ``_lock`` guards the recorded requests and
    may guard the subclass's own state; waiters on it are woken at every recorded request.
    """

    handler: ClassVar[type[LoopbackHandler]]

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self._lock = threading.Condition()
        self._records: list[_Recorded] = []
        self._lifecycle = threading.Lock()  # serialises start/stop/close
        self._port: int | None = None
        self._httpd: _PeerServer | None = None
        self._closed = False

    @property
    def port(self) -> int:
        if self._port is None:
            name = type(self).__name__
            raise RuntimeError(f"{name} has not been started; use it as a context manager or call start()")
        return self._port

    @property
    def addr(self) -> str:
        """The peer's origin, e.g. ``http://127.0.0.1:8200``."""
        scheme = "http" if self.ssl_context is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        """Listen (again, on the same port after :meth:`stop`). A no-op while listening."""
        with self._lifecycle:
            if self._closed:
                raise RuntimeError(f"{type(self).__name__} is closed")
            if self._httpd is not None:
                return
            self._httpd = _PeerServer(self, self._port or 0)
            self._port = self._httpd.port
            self._httpd.start()

    def stop(self) -> None:
        """Stop listening, wake waiting handlers and drop open connections; the peer's state is kept.

        A request still waiting gets its connection dropped unanswered. Returns within about two seconds, even
        if clients keep connections open.
        """
        with self._lifecycle:
            httpd, self._httpd = self._httpd, None
            if httpd is not None:
                httpd.stop()

    def close(self) -> None:
        """Stop for good. Idempotent."""
        with self._lifecycle:
            self._closed = True
        self.stop()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def connections_accepted(self) -> int:
        """How many TCP connections the listening server accepted (keep-alive keeps this low)."""
        return 0 if self._httpd is None else self._httpd.accepted

    @property
    def requests(self) -> list[_Recorded]:
        """A snapshot of every request received, oldest first."""
        with self._lock:
            return list(self._records)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[_Recorded]:
        """Block until at least ``count`` requests were recorded; raise ``TimeoutError`` after ``timeout``."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._records) >= count, timeout=timeout):
                raise TimeoutError(f"expected {count} request(s) within {timeout}s, got {len(self._records)}")
            return list(self._records)

    def _record(self, recorded: _Recorded) -> None:
        with self._lock:
            self._records.append(recorded)
            self._lock.notify_all()
