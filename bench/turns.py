"""Servers driven by the fast client taking turns, and the figures each section reports of them.

Each server makes its warm-up calls first (caches, lazy imports, worker threads, the first page of the WAL),
uncounted; then the measured calls go in batches, the servers taking turns in rotating order (`bench.stats`),
so slow drift (a neighbour's load, a warming cache) reaches every server alike.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.sessions import Call
from bench.stats import rotations, summarize
from bench.wire import Batch, Peer

__all__ = ["Tally", "take_turns"]


@dataclass
class Tally:
    """One server's batches, added up."""

    latencies_s: list[float] = field(default_factory=list)
    seconds: float = 0.0
    client_cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    max_in_flight: int = 0
    answer_bytes: int = 0

    def add(self, batch: Batch) -> None:
        self.latencies_s += batch.latencies_s
        self.seconds += batch.seconds
        self.client_cpu_s += batch.client_cpu_s
        self.server_cpu_s += batch.server_cpu_s
        self.max_in_flight = max(self.max_in_flight, batch.max_in_flight)
        self.answer_bytes = batch.answer_bytes

    def figures(self) -> dict[str, Any]:
        """Latencies in ms (p50, p95, ...), calls per second, and each process's CPU per call in ms."""
        calls = len(self.latencies_s)
        figures = summarize([t * 1000 for t in self.latencies_s]).as_dict()
        figures.update(
            calls_per_s=round(calls / self.seconds, 1),
            server_cpu_ms=round(self.server_cpu_s * 1000 / calls, 4),
            client_cpu_ms=round(self.client_cpu_s * 1000 / calls, 4),
            max_in_flight=self.max_in_flight,
            answer_bytes=self.answer_bytes,
        )
        return figures


def take_turns(
    peers: Sequence[Peer], call: Call, *, calls: int, batch: int, concurrency: int = 1, warmup: int = 20
) -> dict[str, dict[str, Any]]:
    """`calls` calls of `call` on each server (rounded down to whole batches, one batch at least), `concurrency` in
    flight, after `warmup` uncounted ones; each server's figures by its name."""
    for peer in peers:
        peer.run(call, max(warmup, concurrency), concurrency)
    by_name = {peer.name: peer for peer in peers}
    tallies = {name: Tally() for name in by_name}
    for order in rotations(list(by_name), max(1, calls // batch)):
        for name in order:
            tallies[name].add(by_name[name].run(call, batch, concurrency))
    return {name: tally.figures() for name, tally in tallies.items()}
