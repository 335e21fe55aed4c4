"""The fast client: MCP's JSON-RPC driven raw over a server's stdio, with up to N calls in flight.

The official `mcp.Client` costs about 1.3 ms of CPU a call on this machine, as much as a bare server's whole
answer: a bench driven by it measures the client as much as the server. This driver does, per call, only what
measuring needs: write one request built from a prepared prefix, read the answer's bytes, find its id and check
it is a successful result (not a JSON-RPC error, not `isError: true`: either stops the run), and stop a clock.
Its own CPU per call is measured (`Batch.client_cpu_s`) and reported beside the servers' figures, so its cost
shows; the server process's CPU per call (`/proc/<pid>/stat`, all its threads) is the figure governance work is
judged by, as the host's load moves it far less than a latency.

`bench.wire_http` drives the same over Streamable HTTP; `pump` is shared.
"""

import json
import os
import re
import selectors
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from bench.processes import Launch
from bench.sessions import Call

__all__ = [
    "INITIALIZED", "PROTOCOL_VERSION", "TIMEOUT_S", "Batch", "Channel", "Peer", "StdioPeer", "WireError", "answer_id",
    "call_prefix", "initialize_request", "pump", "server_cpu_s", "stdio_peer", "stop",
]  # fmt: skip

PROTOCOL_VERSION = "2025-11-25"
TIMEOUT_S = 60.0
"""The longest the driver waits for any answer (or a server to start) before it gives up on the run."""

_SUCCESS = re.compile(rb'\{"jsonrpc":"2.0","id":(\d+),"result":')
_TICKS = os.sysconf("SC_CLK_TCK")


class WireError(RuntimeError):
    """An answer that is not a successful result, or a server that broke off: the run's times would not be the
    tool's."""


@dataclass(frozen=True)
class Batch:
    """One measured run of calls on one server."""

    latencies_s: list[float]
    seconds: float
    """Wall time from the first request written to the last answer read."""
    client_cpu_s: float
    """This process's CPU over the run: the driver's own cost."""
    server_cpu_s: float
    """The server process's CPU (user and system, all threads) over the run."""
    max_in_flight: int
    answer_bytes: int
    """The size of the last answer."""


def answer_id(answer: bytes) -> int | None:
    """The id of a successful result; None for a notification. Raises `WireError` for an error of either kind.

    The SDK writes compact JSON, `{"jsonrpc":"2.0","id":N,"result":...}`; a key `"isError":` cannot occur inside a
    JSON string (its quotes would be escaped), so an answer of that head, whole (its braces closed) and without
    `"isError":true` anywhere is a success without parsing it. Anything else is parsed and judged on its fields."""
    head = _SUCCESS.match(answer)
    if head is not None and answer.endswith(b"}}") and b'"isError":true' not in answer:
        return int(head[1])
    return _judged(answer)


def _judged(answer: bytes) -> int | None:
    try:
        message = json.loads(answer)
    except ValueError as exc:
        raise WireError(f"an answer that is not JSON: {answer[:200]!r}") from exc
    if not isinstance(message, dict):
        raise WireError(f"an answer that is not a JSON-RPC message: {answer[:200]!r}")
    if "id" not in message and "method" in message:
        return None  # a notification (a log line, progress): nothing to match
    if "method" in message:
        raise WireError(f"the server asked the client {message['method']!r}, which the driver does not answer")
    if "error" in message:
        raise WireError(f"a JSON-RPC error answered call {message.get('id')}: {json.dumps(message['error'])[:300]}")
    result = message.get("result")
    if not isinstance(result, dict) or not isinstance(message.get("id"), int):
        raise WireError(f"an answer without a result or an integer id: {answer[:200]!r}")
    if result.get("isError") is True:
        content = result.get("content") or [{}]
        raise WireError(f"call {message['id']} answered isError: {str(content[0].get('text', ''))[:300]}")
    return int(message["id"])


def server_cpu_s(pid: int) -> float:
    """The process's user and system CPU so far, all its threads (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        text = stat.read()
    fields = text[text.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


class Channel(Protocol):
    """One way to a server: a pipe, or a connection."""

    def fileno(self) -> int: ...
    def send(self, request: bytes) -> None: ...
    def receive(self) -> list[bytes]:
        """What the channel holds now (it is readable): the complete answers it finished, each one JSON text."""
        ...


def pump(
    channels: Sequence[Channel], depth: int, requests: Callable[[int], bytes], ids: range, timeout_s: float = TIMEOUT_S
) -> tuple[list[float], int, int]:
    """Make one call for each id in `ids`, at most `depth` in flight on each channel (a new one sent on a channel as
    each of its answers comes back), answers matched to calls by id. Returns each call's seconds from request to
    answer, the most calls that were in flight at once, and the last answer's size."""
    flight = _InFlight(requests, ids)
    with selectors.DefaultSelector() as selector:
        for channel in channels:
            selector.register(channel.fileno(), selectors.EVENT_READ, channel)
            flight.send(channel, depth)
        while flight.started:
            events = selector.select(timeout_s)
            if not events:
                raise WireError(f"no answer within {timeout_s:g} s; {len(flight.started)} calls outstanding")
            for key, _ in events:
                answers = key.data.receive()
                flight.answered(key.data, answers, time.perf_counter())
    return flight.latencies, flight.peak, flight.size


class _InFlight:
    """The calls sent and not yet answered, by id, with the time each was sent."""

    def __init__(self, requests: Callable[[int], bytes], ids: range) -> None:
        self._requests, self._pending = requests, iter(ids)
        self.started: dict[int, float] = {}
        self.latencies: list[float] = []
        self.peak = self.size = 0

    def send(self, channel: Channel, count: int) -> None:
        for ident in _take(self._pending, count):
            self.started[ident] = time.perf_counter()
            channel.send(self._requests(ident))
        self.peak = max(self.peak, len(self.started))

    def answered(self, channel: Channel, answers: list[bytes], now: float) -> None:
        """Stop the clocks of these answers (read from `channel` at `now`), and send a call in each one's place."""
        for answer in answers:
            ident = answer_id(answer)
            if ident is None:
                continue
            sent = self.started.pop(ident, None)
            if sent is None:
                raise WireError(f"an answer to call {ident}, which was not in flight")
            self.latencies.append(now - sent)
            self.size = len(answer)
            self.send(channel, 1)


def _take(ids: Iterator[int], count: int) -> list[int]:
    return [ident for _, ident in zip(range(count), ids, strict=False)]


def initialize_request() -> bytes:
    return json.dumps({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                   "clientInfo": {"name": "planner-mcp-bench", "version": "1"}},
    }).encode()  # fmt: skip


INITIALIZED = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'


def call_prefix(call: Call) -> bytes:
    """A `tools/call` request of `call` up to its id: the request is this, the id, and `}`."""
    params = json.dumps({"name": call.tool, "arguments": dict(call.arguments)}, separators=(",", ":"))
    return b'{"jsonrpc":"2.0","method":"tools/call","params":' + params.encode() + b',"id":'


class Peer:
    """A server being driven: its name and pid, and `run`, the measured calls. Subclasses say how calls reach it."""

    name: str
    pid: int
    timeout_s = TIMEOUT_S
    """The longest `run` waits for an answer."""
    _next_id = 1

    @contextmanager
    def _channels(self, concurrency: int) -> Iterator[tuple[list[Channel], int]]:
        raise NotImplementedError

    def _requests(self, call: Call) -> Callable[[int], bytes]:
        raise NotImplementedError

    def run(self, call: Call, count: int, concurrency: int = 1) -> Batch:
        """`count` calls of `call`, `concurrency` of them in flight at once, timed."""
        requests = self._requests(call)
        ids = range(self._next_id, self._next_id + count)
        self._next_id += count
        with self._channels(concurrency) as (channels, depth):
            cpu, server, started = time.process_time(), server_cpu_s(self.pid), time.perf_counter()
            latencies, peak, size = pump(channels, depth, requests, ids, self.timeout_s)
            seconds = time.perf_counter() - started
            cpu, server = time.process_time() - cpu, server_cpu_s(self.pid) - server
        return Batch(latencies, seconds, cpu, server, peak, size)


class _Pipe:
    """The server's stdin and stdout: requests written as lines, answers read as lines."""

    def __init__(self, proc: "subprocess.Popen[bytes]") -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self._proc = proc
        self._in, self._out = proc.stdin.fileno(), proc.stdout.fileno()
        self._buffer = b""

    def fileno(self) -> int:
        return self._out

    def send(self, request: bytes) -> None:
        view = memoryview(request)
        while view:
            view = view[os.write(self._in, view) :]

    def receive(self) -> list[bytes]:
        chunk = os.read(self._out, 1 << 20)
        if not chunk:
            raise WireError(f"the server closed its stdout (exit status {self._proc.poll()}); see its stderr")
        *lines, self._buffer = (self._buffer + chunk).split(b"\n")
        return [line for line in lines if line]


class StdioPeer(Peer):
    """A server on stdio, initialized: one pipe, any number of calls in flight on it."""

    def __init__(self, launch: Launch, proc: "subprocess.Popen[bytes]") -> None:
        self.name, self.pid = launch.name, proc.pid
        self._pipe = _Pipe(proc)
        self.initialized = self._exchange(initialize_request() + b"\n")
        self._pipe.send(INITIALIZED + b"\n")

    def _exchange(self, request: bytes) -> dict[str, Any]:
        """Send one request (id 0) and wait for its answer, parsed."""
        self._pipe.send(request)
        with selectors.DefaultSelector() as selector:
            selector.register(self._pipe.fileno(), selectors.EVENT_READ)
            while selector.select(TIMEOUT_S):
                for answer in self._pipe.receive():
                    if answer_id(answer) == 0:
                        return dict(json.loads(answer)["result"])
        raise WireError(f"{self.name}: no answer to initialize within {TIMEOUT_S:g} s")

    @contextmanager
    def _channels(self, concurrency: int) -> Iterator[tuple[list[Channel], int]]:
        yield [self._pipe], concurrency

    def _requests(self, call: Call) -> Callable[[int], bytes]:
        prefix = call_prefix(call)
        return lambda ident: b"%s%d}\n" % (prefix, ident)


@contextmanager
def stdio_peer(launch: Launch, errlog: TextIO) -> Iterator[StdioPeer]:
    """The server started on stdio and initialized; stopped as a host stops it (stdin closed, then SIGTERM)."""
    proc = subprocess.Popen(
        launch.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errlog, env=launch.environment(),
        cwd=launch.params.cwd, bufsize=0,
    )  # fmt: skip
    try:
        yield StdioPeer(launch, proc)
    finally:
        stop(proc)


def stop(proc: "subprocess.Popen[bytes]") -> None:
    """Close its stdin and wait for it to end; SIGTERM, then SIGKILL, if it does not within 30 s."""
    if proc.stdin is not None:
        proc.stdin.close()
    for ending in (None, proc.terminate, proc.kill):
        if ending is not None:
            ending()
        try:
            proc.wait(timeout=30)
            break
        except subprocess.TimeoutExpired:
            continue
    if proc.stdout is not None:
        proc.stdout.close()
