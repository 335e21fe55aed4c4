"""The threaded loopback HTTP server under the test peers (FakeOpenAI, FakeVault).

Why this exists: each peer needs the same plumbing, an HTTP/1.1 keep-alive
server on 127.0.0.1 in daemon threads that stops promptly and completely, even
while a client keeps pooled connections open or a handler is still waiting.
The standard library's ``ThreadingHTTPServer`` does not do that on its own: an
idle keep-alive handler blocks until the client goes away. So
:class:`LoopbackHTTPServer` tracks every open connection and handler thread,
and :meth:`LoopbackHTTPServer.stop` drops the connections and joins the
threads within a deadline. :class:`LoopbackHandler` holds the handler parts
the peers share. What a peer answers stays in the peer's own module.
"""

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, TypeVar, cast

__all__ = ["LoopbackHTTPServer", "LoopbackHandler"]

# How long stop() waits, in total, for the serving and handler threads.
CLOSE_JOIN_TIMEOUT: Final = 2.0
# How often serve_forever() checks for shutdown; small so stop() is prompt.
POLL_INTERVAL: Final = 0.05

_Socket = TypeVar("_Socket", bound=socket.socket)


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer on ``127.0.0.1:<port>`` that tracks its connections and handler threads.

    It listens from the constructor (``port`` 0 picks a free one); :meth:`start`
    serves in a daemon thread and :meth:`stop` ends everything. ``stopping`` is
    set when :meth:`stop` begins, so handlers that wait can give up early.
    Subclasses may override :meth:`setup_connection`, e.g. for TLS.
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
        """Stop serving, drop open connections, close the port and join the threads.

        Returns within about :data:`CLOSE_JOIN_TIMEOUT` seconds even if clients
        keep connections open. Call it once; the server cannot start again.
        """
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

    # -- per connection ----------------------------------------------------

    def setup_connection(self, sock: socket.socket) -> socket.socket | None:
        """Run in the connection's own thread before any HTTP; return the socket to serve, or None to drop it."""
        return sock

    def replace_connection(self, sock: socket.socket, wrap: Callable[[socket.socket], _Socket]) -> _Socket | None:
        """Track ``wrap(sock)`` instead of ``sock``, unless :meth:`stop` is dropping connections.

        Then ``sock`` is closed and None returned. For :meth:`setup_connection`
        when ``wrap`` takes over the file descriptor (as ``SSLContext.wrap_socket`` does).
        """
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

    # -- socketserver hooks ------------------------------------------------

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
