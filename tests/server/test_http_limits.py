"""HTTP stays up under connections that never finish a request: each is closed once the request timeout passes,
and past the connection limit a newcomer takes the place of the connection that has waited longest, so a caller
whose request comes at once is served while hundreds stall. Against a real server process on loopback, its
stderr read as a log collector would (`--log-format json`)."""

import resource
import select
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

from tests.conftest import DEFAULT_TOOLS
from tests.http_server import JSON_LOGS, refusals, serving, use

pytestmark = pytest.mark.subprocess

TOKEN = "test-http-token-0123456789abcdef"
_HALF_A_REQUEST = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@contextmanager
def _stalled(port: int, count: int, sent: bytes) -> Iterator[list[socket.socket]]:
    """`count` connections that send `sent` and then nothing, ever."""
    conns: list[socket.socket] = []
    try:
        for _ in range(count):
            conns.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            conns[-1].sendall(sent)
            conns[-1].setblocking(False)
        yield conns
    finally:
        for conn in conns:
            conn.close()


def _closed(conn: socket.socket) -> bool:
    try:
        return conn.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def _still_open(conns: list[socket.socket], within: float) -> list[socket.socket]:
    """Waits (`within` seconds at most) for the server to close every connection; returns those it has not."""
    by_fd = {conn.fileno(): conn for conn in conns}
    poller = select.poll()
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + within
    while by_fd and (left := deadline - time.monotonic()) > 0:
        for fd, _ in poller.poll(left * 1000):
            if _closed(by_fd[fd]):
                poller.unregister(fd)
                del by_fd[fd]
    return list(by_fd.values())


def _served_within(url: str, seconds: float) -> list[str]:
    async def bounded() -> list[str]:
        with anyio.fail_after(seconds):
            tools, _ = await use(url, TOKEN)
        return tools

    return anyio.run(bounded)


def _descriptors_for(count: int) -> None:
    """This test process must be able to open `count` sockets at once."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count:
        if hard != resource.RLIM_INFINITY and hard < count:
            pytest.skip(f"needs {count} open files; `ulimit -Hn` is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))


def test_hundreds_of_half_sent_requests_neither_exhaust_the_descriptors_nor_keep_a_caller_out(
    ledger_path: Path,
) -> None:
    stalling = 300  # more than the server's 256 descriptors: before the limits, every one was held
    _descriptors_for(stalling + 200)
    env = {"PLANNER_MCP_HTTP_TOKEN": TOKEN, "PLANNER_MCP_HTTP_REQUEST_TIMEOUT": "2"}
    with (
        serving(ledger_path, env=env, options=JSON_LOGS, descriptors=256) as served,
        _stalled(served.port, stalling, _HALF_A_REQUEST) as stalled,
    ):
        tools = _served_within(served.url, 20)
        still_open = _still_open(stalled, within=20)
    assert tools == DEFAULT_TOOLS
    assert still_open == []
    lines, unlogged = refusals(served.stderr)
    assert {line["reason"] for line in lines} <= {"request_timeout", "connection_limit"}
    assert len(lines) + unlogged == stalling and len(lines) < stalling  # each one on the record, at a bounded rate


def test_past_the_connection_limit_a_newcomer_takes_the_place_of_the_longest_waiting(ledger_path: Path) -> None:
    env = {
        "PLANNER_MCP_HTTP_TOKEN": TOKEN,
        "PLANNER_MCP_HTTP_MAX_CONNECTIONS": "8",
        "PLANNER_MCP_HTTP_REQUEST_TIMEOUT": "600",  # so nothing below is closed for taking too long
    }
    with (
        serving(ledger_path, env=env, options=JSON_LOGS) as served,
        _stalled(served.port, 8, b"") as first,
        _stalled(served.port, 8, _HALF_A_REQUEST) as later,
    ):
        first_open = _still_open(first, within=20)
        tools = _served_within(served.url, 20)
        later_open = sum(not _closed(conn) for conn in later)
    assert first_open == []  # each closed to make room for one of the later eight
    assert tools == DEFAULT_TOOLS  # and the caller's connections took the place of some of those
    assert 0 < later_open < 8
    lines, _ = refusals(served.stderr)
    assert {line["reason"] for line in lines} == {"connection_limit"}
    assert all(line["remote"].startswith("127.0.0.1:") for line in lines)


def test_a_request_whose_body_stops_coming_is_closed_once_the_request_timeout_passes(ledger_path: Path) -> None:
    env = {"PLANNER_MCP_HTTP_TOKEN": TOKEN, "PLANNER_MCP_HTTP_REQUEST_TIMEOUT": "1"}
    headers = (
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json"
        "\r\nAccept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n"
    )
    with serving(ledger_path, env=env, options=JSON_LOGS) as served:
        with _stalled(served.port, 1, headers.encode() + b'{"jsonrpc": "2.0", ') as stalled:
            still_open = _still_open(stalled, within=20)
        tools = _served_within(served.url, 20)
    assert still_open == [] and tools == DEFAULT_TOOLS
    lines, _ = refusals(served.stderr)
    [line] = [line for line in lines if line["reason"] == "request_timeout"]
    assert (line["method"], line["path"], line["status"]) == ("POST", "/mcp", None)
    assert TOKEN not in served.stderr


def test_a_request_head_that_never_ends_is_cut_off_not_held_until_the_request_timeout(ledger_path: Path) -> None:
    env = {"PLANNER_MCP_HTTP_TOKEN": TOKEN, "PLANNER_MCP_HTTP_REQUEST_TIMEOUT": "600"}  # not what closes it here
    with serving(ledger_path, env=env, options=JSON_LOGS) as served:
        conn = socket.create_connection(("127.0.0.1", served.port), timeout=10)
        try:
            conn.sendall(_HALF_A_REQUEST + b"X-Filler: ")
            for _ in range(1024):  # a MiB of one header's value: the server holds 16 KiB of a head at most
                conn.sendall(b"a" * 1024)
        except OSError:
            pass  # closed by the server while this was still sending
        conn.setblocking(False)
        still_open = _still_open([conn], within=20)
        conn.close()
        tools = _served_within(served.url, 20)
    assert still_open == [] and tools == DEFAULT_TOOLS
