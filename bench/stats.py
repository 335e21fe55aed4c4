"""Order statistics and the alternating schedule: the arithmetic every section of the benchmark shares."""

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Summary", "exponent", "percentile", "ratio", "rotations", "summarize"]


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between the nearest ranks (numpy's default)."""
    if not samples:
        raise ValueError("no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Summary:
    """Latencies in milliseconds (or any one unit) of `n` samples."""

    n: int
    p50: float
    p95: float
    mean: float
    min: float
    max: float

    def as_dict(self) -> dict[str, Any]:
        return {key: round(value, 4) if isinstance(value, float) else value for key, value in asdict(self).items()}


def summarize(samples: Sequence[float]) -> Summary:
    return Summary(
        n=len(samples),
        p50=percentile(samples, 50),
        p95=percentile(samples, 95),
        mean=sum(samples) / len(samples),
        min=min(samples),
        max=max(samples),
    )


def ratio(value: float, baseline: float) -> float:
    """`value / baseline`, rounded for reports; a baseline of zero cannot be compared against."""
    if baseline <= 0:
        raise ValueError(f"cannot compare against a baseline of {baseline}")
    return round(value / baseline, 3)


def rotations(names: Sequence[str], rounds: int) -> list[list[str]]:
    """One order per round, each a rotation of the last, so every variant runs first, second, … equally
    often and slow drift (a warming cache, a neighbour's load) reaches all of them alike."""
    count = len(names)
    return [[names[(start + i) % count] for i in range(count)] for start in (r % count for r in range(rounds))]


def exponent(sizes: Sequence[float], values: Sequence[float]) -> float:
    """The growth exponent k in value ~ size**k between the two largest sizes: 1 is linear, 0 flat."""
    if len(sizes) != len(values) or len(sizes) < 2:
        raise ValueError("need at least two sizes with one value each")
    (s1, v1), (s2, v2) = sorted(zip(sizes, values, strict=True))[-2:]
    return round(math.log(v2 / v1) / math.log(s2 / s1), 3)
