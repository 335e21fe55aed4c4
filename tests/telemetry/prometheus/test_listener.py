"""The metrics listener answers `GET /metrics` and nothing else, with a bounded answer to anything a client
sends, and a client that is slow, silent or hostile holds neither the listener nor anyone else's scrape. A port it
cannot bind is an error on stderr, and the server goes on without metrics."""

import logging
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import anyio
import pytest

from server import Settings
from server.app.telemetry import start_telemetry
from server.config.telemetry import TelemetryConfig
from server.telemetry import NO_SIGNALS, TelemetryUnavailable
from server.telemetry.prometheus import PrometheusSignals, prometheus_signals
from server.telemetry.prometheus.listener import MAX_CONNECTIONS, MAX_HEAD_BYTES, MetricsListener
from tests.telemetry.prometheus.scrape import exchange, scrape

pytestmark = pytest.mark.anyio


@pytest.fixture
def listener() -> Iterator[MetricsListener]:
    signals = PrometheusSignals("1.2.3")
    with MetricsListener.open("127.0.0.1", 0, signals.exposition) as listening:
        yield listening


def test_a_scrape_is_answered_in_the_text_format(listener: MetricsListener) -> None:
    found = scrape(listener.address)
    assert found.value("planner_mcp_build_info", version="1.2.3") == 1
    head = exchange(listener.address, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.status == 200 and head.body == b"" and int(head.headers["content-length"]) > 0
    with_query = exchange(listener.address, b"GET /metrics?name[]=x HTTP/1.0\r\n\r\n")
    assert with_query.status == 200


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", 404),
        (b"GET /metrics/../etc/passwd HTTP/1.1\r\n\r\n", 404),
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
        (b"DELETE /metrics HTTP/1.1\r\n\r\n", 405),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),  # a TLS hello, say
        (b"GET /metrics\r\n\r\n", 400),
        (b"\r\n\r\n", 400),
        (b"GET /metrics HTTP/2.0\r\n\r\n", 400),
    ],
)
def test_anything_but_a_scrape_gets_a_short_error(listener: MetricsListener, request_bytes: bytes, status: int) -> None:
    answer = exchange(listener.address, request_bytes)
    assert answer.status == status and len(answer.body) < 200
    assert answer.headers["connection"] == "close"
    if status == 405:
        assert answer.headers["allow"] == "GET, HEAD"


def test_a_head_past_the_cap_is_refused_without_being_read_whole(listener: MetricsListener) -> None:
    huge = b"GET /metrics HTTP/1.1\r\nX-Filler: " + b"a" * (MAX_HEAD_BYTES * 4)
    assert exchange(listener.address, huge).status == 431


def test_a_body_sent_with_a_refused_request_does_not_cost_the_client_its_answer(listener: MetricsListener) -> None:
    body = b"x" * 50_000
    post = b"POST /metrics HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    for _ in range(5):  # a reset would destroy the answer now and then, not always
        assert exchange(listener.address, post).status == 405


async def test_silent_and_slow_clients_hold_no_one_else_s_scrape(listener: MetricsListener) -> None:
    with ExitStack() as held:
        opened = [held.enter_context(socket.create_connection(listener.address, timeout=10)) for _ in range(8)]
        for sock in opened[1::2]:
            sock.sendall(b"GET /metr")  # slowloris: a request that never ends
        with anyio.fail_after(3):  # well before any of them times out (5 s)
            found = await anyio.to_thread.run_sync(scrape, listener.address)
    assert found.value("planner_mcp_build_info") == 1


async def test_past_the_most_connections_it_keeps_open_the_oldest_is_closed(listener: MetricsListener) -> None:
    with ExitStack() as held:
        oldest = held.enter_context(socket.create_connection(listener.address, timeout=10))
        for _ in range(MAX_CONNECTIONS):
            held.enter_context(socket.create_connection(listener.address, timeout=10))
        with anyio.fail_after(3):  # well before its own deadline (5 s)
            assert await anyio.to_thread.run_sync(oldest.recv, 1) == b""
            found = await anyio.to_thread.run_sync(scrape, listener.address)
    assert found.value("planner_mcp_build_info") == 1


async def test_a_client_that_never_reads_its_answer_holds_no_one_else_s() -> None:
    body = b"# " + b"x" * (8 * 2**20) + b"\n"  # far more than the sockets' buffers hold
    request = b"GET /metrics HTTP/1.1\r\n\r\n"
    with (
        MetricsListener.open("127.0.0.1", 0, lambda: body) as listening,
        socket.create_connection(listening.address, timeout=10) as stalled,
    ):
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        stalled.sendall(request)  # and never reads
        with anyio.fail_after(4):  # before the stalled one's deadline (5 s) could have freed anything
            answer = await anyio.to_thread.run_sync(exchange, listening.address, request)
    assert answer.status == 200 and answer.body == body


def test_a_port_in_use_is_an_error_on_stderr_and_the_server_goes_on_without_metrics(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(TelemetryUnavailable), prometheus_signals("127.0.0.1", port, "1.2.3"):
            pass
        settings = Settings(ledger_path=tmp_path / "ledger.db", telemetry=TelemetryConfig(metrics=("127.0.0.1", port)))
        with caplog.at_level(logging.ERROR), start_telemetry(settings) as signals:
            assert signals is NO_SIGNALS
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    message = record.getMessage()
    assert f"127.0.0.1:{port}" in message and "PLANNER_MCP_METRICS_PORT" in message and "in use" in message
    assert "MCP is served as usual" in message


def test_the_listener_stops_with_its_block_and_frees_the_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with prometheus_signals("127.0.0.1", port, "1.2.3") as signals:
        assert isinstance(signals, PrometheusSignals)
        assert scrape(("127.0.0.1", port)).value("planner_mcp_build_info") == 1
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_an_ipv6_loopback_host_is_served_when_the_machine_has_one() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        listening = MetricsListener.open("::1", 0, PrometheusSignals("1.2.3").exposition)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with listening:
        assert scrape(listening.address).value("planner_mcp_build_info") == 1
