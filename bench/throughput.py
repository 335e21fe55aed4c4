"""Throughput beside latency: `read_inventory` with 1, 8 and 32 calls in flight, over stdio and over HTTP.

Over stdio, the calls in flight share the one session a host has (the server reads the next request while
others are being answered); over Streamable HTTP, each is a keep-alive connection of its own, all on one
session, each sending its next call when its answer is back. planner-mcp (over HTTP with its bearer token, its
Host and Origin checks and its connection limits, as it is served) is measured beside the strict floor (judged
against), the sdk floor and the bare one (see `bench.floor_server`), the servers taking turns.
"""

from contextlib import ExitStack
from typing import Any, TextIO

from bench.stats import ratio
from bench.turns import take_turns
from bench.wire import Peer, stdio_peer
from bench.wire_http import http_peer
from bench.workspace import READS, Workspace

__all__ = ["TOOL", "throughput"]

TOOL = "read_inventory"


def throughput(ws: Workspace, calls: int, batch: int, concurrencies: tuple[int, ...], errlog: TextIO) -> dict[str, Any]:
    """Each transport's figures by the number of calls in flight (as a string: it is a JSON key)."""
    result: dict[str, Any] = {"tool": TOOL}
    for transport in ("stdio", "http"):
        result[transport] = _transport(ws, transport, calls, batch, concurrencies, errlog)
    return result


def _transport(
    ws: Workspace, transport: str, calls: int, batch: int, concurrencies: tuple[int, ...], errlog: TextIO
) -> dict[str, Any]:
    http = transport == "http"
    launches = [
        ws.planner_http("planner", "throughput-http") if http else ws.planner("planner", "throughput-stdio"),
        ws.strict(http=http),
        ws.sdk(http=http),
        ws.bare(http=http),
    ]
    by_concurrency: dict[str, Any] = {}
    with ExitStack() as stack:
        start = http_peer if http else stdio_peer
        peers: list[Peer] = [stack.enter_context(start(launch, errlog)) for launch in launches]
        for concurrency in concurrencies:
            figures: dict[str, Any] = take_turns(
                peers, READS[TOOL], calls=calls, batch=max(batch, concurrency), concurrency=concurrency,
                warmup=20 + 2 * concurrency,
            )  # fmt: skip
            planner, strict = figures["planner"], figures["strict"]
            figures["ratio_to_strict"] = ratio(planner["calls_per_s"], strict["calls_per_s"])
            figures["ratio_p50_to_strict"] = ratio(planner["p50"], strict["p50"])
            figures["ratio_server_cpu_to_strict"] = ratio(planner["server_cpu_ms"], strict["server_cpu_ms"])
            by_concurrency[str(concurrency)] = figures
    return by_concurrency
