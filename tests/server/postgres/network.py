"""A network path to PostgreSQL the tests can cut: a loopback TCP listener that either forwards every byte to
the real server or, while `silent`, accepts connections and never answers (a firewall that drops packets, a
host gone quiet), so a client waits for its connect timeout. Restoring it lets new connections through again.
"""

import contextlib
import socket
import threading
from types import TracebackType
from typing import Self

__all__ = ["Route"]

_CHUNK = 64 * 1024


class Route:
    """127.0.0.1:`port` leading to 127.0.0.1:`target`; `silent` holds new connections unanswered."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.silent = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            self._keep(client)
            if self.silent:
                continue  # accepted, never read, never answered
            try:
                server = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            self._keep(server)
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def _keep(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy bytes one way until either side closes, then close both."""
    try:
        while data := source.recv(_CHUNK):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
