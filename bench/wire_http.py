"""The fast client over Streamable HTTP: raw keep-alive HTTP/1.1 on loopback sockets, POSTs to /mcp.

A client library (httpx) costs more per request than a bare server's answer; this one writes each request from
prepared headers and reads each response just far enough to have its JSON-RPC message: the status line and
headers, then a body of a known length or in chunks, as JSON or as a server-sent event's `data:` line (the SDK
answers either way). One session is initialized (its `Mcp-Session-Id` kept) and N calls run at once on N
connections, each sending its next call when its answer is back. Any status but 200 stops the run.
"""

import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, TextIO

from bench.processes import Launch
from bench.sessions import Call
from bench.wire import INITIALIZED, TIMEOUT_S, Channel, Peer, WireError, answer_id, call_prefix, initialize_request

__all__ = ["HttpConnection", "HttpPeer", "Response", "http_peer"]

Response = tuple[int, dict[bytes, bytes], bytes]
"""A response's status, its headers (names lower-cased) and its body, de-chunked."""


class HttpConnection:
    """One keep-alive connection to the server; `receive` yields the JSON-RPC messages of each whole response."""

    def __init__(self, port: int) -> None:
        self._socket = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""
        self.responses: list[Response] = []
        """Every whole response read, when `keep` is set (the handshake reads its headers)."""
        self.keep = False

    def fileno(self) -> int:
        return self._socket.fileno()

    def send(self, request: bytes) -> None:
        self._socket.sendall(request)

    def close(self) -> None:
        self._socket.close()

    def receive(self) -> list[bytes]:
        chunk = self._socket.recv(1 << 20)
        if not chunk:
            raise WireError("the server closed the connection")
        self._buffer += chunk
        messages: list[bytes] = []
        while (response := self._response()) is not None:
            status, headers, body = response
            if self.keep:
                self.responses.append(response)
            if status not in (200, 202):
                raise WireError(f"HTTP {status}: {body[:300]!r}")
            messages += _messages(headers, body)
        return messages

    def _response(self) -> Response | None:
        """The first whole response in the buffer, taken out of it; None while it is not all here."""
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        status_line, *lines = self._buffer[:end].split(b"\r\n")
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(b":") for line in lines)}
        start = end + 4
        if (length := headers.get(b"content-length")) is not None:
            if len(self._buffer) < start + int(length):
                return None
            body, self._buffer = self._buffer[start : start + int(length)], self._buffer[start + int(length) :]
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            if (whole := _dechunked(self._buffer, start)) is None:
                return None
            body, rest = whole
            self._buffer = self._buffer[rest:]
        else:
            raise WireError(f"a response with neither a length nor chunks: {self._buffer[:end]!r}")
        return int(status_line.split(b" ", 2)[1]), headers, body


def _dechunked(buffer: bytes, at: int) -> tuple[bytes, int] | None:
    """A chunked body starting at `at`, joined, and where what follows it begins; None while it is not all here."""
    parts: list[bytes] = []
    while (eol := buffer.find(b"\r\n", at)) >= 0:
        size, start = int(buffer[at:eol].split(b";")[0], 16), eol + 2
        if size == 0:  # the last chunk, then trailers (none are sent) and a blank line
            end = buffer.find(b"\r\n\r\n", eol)
            return (b"".join(parts), end + 4) if end >= 0 else None
        if len(buffer) < start + size + 2:
            return None
        parts.append(buffer[start : start + size])
        at = start + size + 2
    return None


def _messages(headers: dict[bytes, bytes], body: bytes) -> list[bytes]:
    """The JSON-RPC messages of a body: the body itself if JSON, each event's `data:` line if an event stream."""
    if headers.get(b"content-type", b"").startswith(b"text/event-stream"):
        return [line[5:].strip() for line in body.split(b"\n") if line.startswith(b"data:") and line[5:].strip()]
    return [body] if body else []


class HttpPeer(Peer):
    """A server on Streamable HTTP with one initialized session: `run` opens N connections, one call in flight on
    each, and closes them after (before and after the clock: an idle kept-alive connection would be closed by
    the server between runs)."""

    def __init__(self, launch: Launch, pid: int) -> None:
        assert launch.http_port is not None
        self.name, self.pid, self._port = launch.name, pid, launch.http_port
        self._fixed = (
            f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{self._port}\r\nContent-Type: application/json\r\n"
            "Accept: application/json, text/event-stream\r\n"
            + (f"Authorization: Bearer {launch.token}\r\n" if launch.token else "")
        ).encode()
        self.initialized = self._handshake()

    def _handshake(self) -> dict[str, Any]:
        """initialize, then the initialized notification, on one connection; keeps the session's id and version."""
        connection = HttpConnection(self._port)
        connection.keep = True
        try:
            [(_, headers, body)] = self._exchange(connection, initialize_request())
            session = headers.get(b"mcp-session-id")
            [answer] = _messages(headers, body)
            if answer_id(answer) != 0:
                raise WireError(f"{self.name}: an answer to initialize of another id")
            result: dict[str, Any] = json.loads(answer)["result"]
            if session is not None:
                self._fixed += b"Mcp-Session-Id: " + session + b"\r\n"
            self._fixed += b"Mcp-Protocol-Version: " + str(result["protocolVersion"]).encode() + b"\r\n"
            [(status, _, _)] = self._exchange(connection, INITIALIZED)
            if status != 202:
                raise WireError(f"{self.name}: the initialized notification was answered {status}, not 202")
            return result
        finally:
            connection.close()

    def _exchange(self, connection: HttpConnection, body: bytes) -> list[Response]:
        """POST `body`, and wait for its response."""
        connection.responses.clear()
        connection.send(self._request(body))
        deadline = time.monotonic() + TIMEOUT_S
        while not connection.responses:
            if time.monotonic() > deadline:
                raise WireError(f"{self.name}: no response within {TIMEOUT_S:g} s")
            connection.receive()
        return list(connection.responses)

    def _request(self, body: bytes) -> bytes:
        return b"%sContent-Length: %d\r\n\r\n%s" % (self._fixed, len(body), body)

    @contextmanager
    def _channels(self, concurrency: int) -> Iterator[tuple[list[Channel], int]]:
        with ExitStack() as stack:
            connections = []
            for _ in range(concurrency):
                connection = HttpConnection(self._port)
                stack.callback(connection.close)
                connections.append(connection)
            yield list(connections), 1

    def _requests(self, call: Call) -> Callable[[int], bytes]:
        prefix = call_prefix(call)
        return lambda ident: self._request(b"%s%d}" % (prefix, ident))


@contextmanager
def http_peer(launch: Launch, errlog: TextIO) -> Iterator[HttpPeer]:
    """The server started on its port and a session initialized once it accepts; stopped with SIGTERM."""
    assert launch.http_port is not None
    proc = subprocess.Popen(
        launch.argv, stdin=subprocess.DEVNULL, stdout=errlog, stderr=errlog, env=launch.environment(),
        cwd=launch.params.cwd,
    )  # fmt: skip
    try:
        _until_it_accepts(proc, launch)
        yield HttpPeer(launch, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def _until_it_accepts(proc: "subprocess.Popen[bytes]", launch: Launch) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise WireError(f"{launch.name} exited with status {proc.returncode} before it accepted connections")
        try:
            socket.create_connection(("127.0.0.1", launch.http_port or 0), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise WireError(f"{launch.name} did not accept connections within {TIMEOUT_S:g} s") from None
            time.sleep(0.05)
