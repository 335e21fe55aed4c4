"""The targets of issues 7, 23, 26 and 27 as data: where each figure sits in the results, and the limit it must keep."""

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["TARGETS", "Target", "Verdict", "judge"]


@dataclass(frozen=True)
class Target:
    name: str
    path: tuple[str, ...]
    limit: float
    at_most: bool = True
    unit: str = "x"

    def check(self, value: float) -> bool:
        compare: Callable[[float, float], bool] = operator.le if self.at_most else operator.ge
        return compare(value, self.limit)


@dataclass(frozen=True)
class Verdict:
    target: Target
    value: float | None
    ok: bool

    def as_dict(self) -> dict[str, Any]:
        t = self.target
        return {
            "name": t.name,
            "value": self.value,
            "limit": t.limit,
            "at_most": t.at_most,
            "unit": t.unit,
            "ok": self.ok,
            "measured": self.value is not None,
        }


TARGETS = (
    Target("cold start, p50 vs bare", ("cold_start", "ratio_p50_to_bare"), 1.10),
    # Issue 27: against the strict floor (bench.floor_server), driven by the fast client (bench.wire).
    Target("read_docs p50 vs strict floor, stdio", ("read_tools", "read_docs", "ratio_p50_to_strict"), 1.25),
    Target("read_inventory p50 vs strict floor, stdio", ("read_tools", "read_inventory", "ratio_p50_to_strict"), 1.25),
    Target("calls/s at 8 in flight vs strict, stdio", ("throughput", "stdio", "8", "ratio_to_strict"), 0.8, False),
    Target("calls/s at 8 in flight vs strict, HTTP", ("throughput", "http", "8", "ratio_to_strict"), 0.8, False),
    Target("peak RSS vs bare", ("memory", "ratio_to_bare"), 1.25),
    Target("ledger appends/s, one process", ("ledger", "one_process", "per_second"), 3000, False, "/s"),
    Target("ledger appends/s, 4 processes", ("ledger", "shared", "per_second"), 1500, False, "/s"),
    Target("ledger rows lost, 4 processes", ("ledger", "shared", "lost"), 0, unit=" rows"),
    # Above the delay, less what the bare floor's same request costs (see the README's Benchmarks).
    Target("analyze overhead p50 vs bare", ("llm", "analyze", "overhead_vs_bare_p50_ms"), 3.0, unit=" ms"),
    Target("generate_plan overhead p50 vs bare", ("llm", "generate_plan", "overhead_vs_bare_p50_ms"), 3.0, unit=" ms"),
    # Flat: the largest ledger's p50 within 10% of the smallest's. Linear at most: p50 ~ size**k with k <= 1.
    Target("read_docs p50, largest vs smallest ledger", ("growth", "ledger", "ratio_p50_largest_to_smallest"), 1.10),
    Target("read_docs p50 growth exponent in doc size", ("growth", "documents", "exponent"), 1.0),
    # The ledger on PostgreSQL (issue 23), loopback, fsync and synchronous_commit on.
    Target("PostgreSQL appends/s, 8 writers", ("postgres", "appends", "writers", "per_second"), 1500, False, "/s"),
    Target("PostgreSQL rows lost, 8 writers", ("postgres", "appends", "writers", "lost"), 0, unit=" rows"),
    Target("read_docs p50, PostgreSQL vs SQLite", ("postgres", "read_docs", "ratio_p50_to_sqlite"), 1.5),
    # The audit report (issue 26), verify included, on the profile's ledger (1M rows in the full run).
    Target("ledger report, end to end", ("report", "seconds"), 30, unit=" s"),
)


def _lookup(results: Mapping[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = results
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) else None


def judge(results: Mapping[str, Any]) -> list[Verdict]:
    """Every target against `results`; a figure that was not measured (its section skipped) has no value."""
    verdicts = []
    for target in TARGETS:
        value = _lookup(results, target.path)
        verdicts.append(Verdict(target, value, value is not None and target.check(value)))
    return verdicts
