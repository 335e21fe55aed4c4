"""Driving servers over stdio with the official client: cold starts, and calls interleaved across servers."""

import json
import time
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, TextIO

import anyio
from mcp import Client
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult

from bench.processes import Launch, children, peak_rss_kib
from bench.stats import rotations

__all__ = ["Call", "CallFailed", "Samples", "Session", "cold_start", "interleave", "open_session"]

_TIMEOUT = 120.0


class CallFailed(RuntimeError):
    """A measured call came back as an error: its time would measure a refusal, not the tool."""


@dataclass(frozen=True)
class Call:
    tool: str
    arguments: Mapping[str, Any]


@dataclass
class Session:
    name: str
    client: Client
    pid: int

    async def call(self, call: Call) -> CallToolResult:
        result = await self.client.call_tool(call.tool, dict(call.arguments))
        if result.is_error:
            text = result.content[0].text if result.content and result.content[0].type == "text" else ""
            raise CallFailed(f"{self.name}: {call.tool} failed: {text[:500]}")
        return result

    def peak_rss_kib(self) -> int:
        return peak_rss_kib(self.pid)


@dataclass
class Samples:
    """Round-trip times in milliseconds per server, and the size of what each answered."""

    times_ms: dict[str, list[float]] = field(default_factory=dict)
    payload_bytes: dict[str, int] = field(default_factory=dict)


async def open_session(stack: AsyncExitStack, launch: Launch, errlog: TextIO) -> Session:
    """Start the server, complete the handshake, and learn its pid (the one new child of this process)."""
    before = children()
    client = await stack.enter_async_context(Client(stdio_client(launch.params, errlog=errlog)))
    new = children() - before
    if len(new) != 1:
        raise RuntimeError(f"expected one new server process for {launch.name}, found {sorted(new)}")
    return Session(launch.name, client, new.pop())


async def cold_start(launch: Launch, errlog: TextIO) -> float:
    """Seconds from spawning the process to the answer of its first `tools/list`."""
    with anyio.fail_after(_TIMEOUT):
        async with AsyncExitStack() as stack:
            started = time.perf_counter()
            client = await stack.enter_async_context(Client(stdio_client(launch.params, errlog=errlog)))
            tools = await client.list_tools()
            elapsed = time.perf_counter() - started
    if not tools.tools:
        raise RuntimeError(f"{launch.name} listed no tools")
    return elapsed


async def interleave(
    sessions: Sequence[Session], calls: Sequence[Call], *, rounds: int, batch: int, warmup: int = 20
) -> Samples:
    """Time `rounds` x `batch` calls on every session, the sessions taking turns in rotating order.

    Each session's calls cycle through `calls`. The first `warmup` calls of each session are made (caches,
    lazy imports, the first page of the WAL) but not counted.
    """
    samples = Samples({s.name: [] for s in sessions})
    with anyio.fail_after(_TIMEOUT):
        for session in sessions:
            for i in range(warmup):
                result = await session.call(calls[i % len(calls)])
            samples.payload_bytes[session.name] = len(json.dumps(result.structured_content))
    by_name = {s.name: s for s in sessions}
    made = dict.fromkeys(by_name, 0)
    for order in rotations(list(by_name), rounds):
        for name in order:
            session, times = by_name[name], samples.times_ms[name]
            with anyio.fail_after(_TIMEOUT):
                for _ in range(batch):
                    call = calls[made[name] % len(calls)]
                    made[name] += 1
                    started = time.perf_counter()
                    await session.call(call)
                    times.append((time.perf_counter() - started) * 1000)
    return samples
