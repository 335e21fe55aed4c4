"""The fast client over Streamable HTTP: a real planner-mcp HTTP process driven with its token (and refused
without it), the floors without one, and responses read whole in whatever pieces they arrive, as JSON or as an
event stream."""

import socket
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TextIO

import pytest

from bench.wire import WireError
from bench.wire_http import HttpConnection, http_peer
from bench.workspace import READS, Workspace

pytestmark = [pytest.mark.anyio, pytest.mark.subprocess]


async def test_planner_mcp_over_http_is_driven_with_calls_in_flight_each_recorded(
    workspace: Workspace, errlog: TextIO
) -> None:
    with http_peer(workspace.planner_http("planner", "http-ledger"), errlog) as peer:
        batch = peer.run(READS["read_docs"], 12, concurrency=4)
    assert len(batch.latencies_s) == 12 and batch.max_in_flight == 4
    assert peer.initialized["serverInfo"]["name"] == "planner-mcp"
    with sqlite3.connect(workspace.root / "http-ledger" / "ledger.db") as conn:
        assert conn.execute("SELECT count(*) FROM agent_actions").fetchone()[0] == 12


async def test_the_strict_floor_over_http_is_driven_without_a_token(workspace: Workspace, errlog: TextIO) -> None:
    with http_peer(workspace.strict(http=True), errlog) as peer:
        batch = peer.run(READS["read_inventory"], 16, concurrency=8)
    assert len(batch.latencies_s) == 16 and batch.max_in_flight == 8
    with sqlite3.connect(workspace.root / "strict-http-floor.db") as conn:
        assert conn.execute("SELECT count(*) FROM calls").fetchone()[0] == 16


async def test_a_wrong_token_is_refused_and_stops_the_run(workspace: Workspace, errlog: TextIO) -> None:
    launch = replace(workspace.planner_http("planner", "http-ledger"), token="not-the-token-0123456789")
    with pytest.raises(WireError, match="HTTP 401"), http_peer(launch, errlog):
        pass


_JSON = b'{"jsonrpc":"2.0","id":1,"result":{"content":[]}}'
_EVENTS = (
    b'event: message\r\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{}}\r\n\r\n'
    b'event: message\r\ndata: {"jsonrpc":"2.0","id":2,"result":{"content":[]}}\r\n\r\n'
)


def _chunked(body: bytes, size: int) -> bytes:
    chunks = [body[at : at + size] for at in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"


@contextmanager
def _trickling(*parts: bytes) -> Iterator[int]:
    """A loopback server that writes each of `parts` to its one connection five bytes at a time, the next once the
    client has sent a byte; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for data in parts:
                for at in range(0, len(data), 5):
                    connection.sendall(data[at : at + 5])
                connection.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(timeout=10)


def test_responses_are_read_whole_as_json_or_as_events_in_chunks_however_they_arrive() -> None:
    data = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(_JSON), _JSON)
    data += b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    data += _chunked(_EVENTS, 7)
    refused = b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n\r\noops"
    with _trickling(data, refused) as port:
        connection = HttpConnection(port)
        messages: list[bytes] = []
        while len(messages) < 3:
            messages += connection.receive()
        connection.send(b"x")
        with pytest.raises(WireError, match="HTTP 500: b'oops'"):
            while True:
                connection.receive()
        connection.close()
    notification, answer = (line[6:] for line in _EVENTS.split(b"\r\n") if line.startswith(b"data: "))
    assert messages == [_JSON, notification, answer]
