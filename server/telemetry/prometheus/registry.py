"""Counters, gauges and histograms with labels, kept in memory and written in Prometheus's text format 0.0.4.

Small on purpose: the server needs a few families whose labels it chooses itself, so the format is written here
(https://prometheus.io/docs/instrumenting/exposition_formats/) rather than adding a runtime dependency. Each
family has its own lock: the call path updates one family at a time from worker threads, and a scrape copies
each family's series under its lock, so a scrape never waits on more than one update and never sees half of one.
"""

import math
import threading
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from typing import TypeVar

__all__ = ["CONTENT_TYPE", "Counter", "Gauge", "Histogram", "Registry"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[str, ...]


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


class _Family:
    kind = ""

    def __init__(self, name: str, help_text: str, labels: Sequence[str]) -> None:
        self.name = name
        self.help = help_text
        self.labels: Labels = tuple(labels)
        self._lock = threading.Lock()

    def _check(self, values: Labels) -> None:
        if len(values) != len(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {len(values)} values")

    def _selector(self, values: Labels, extra: str = "") -> str:
        pairs = [f'{name}="{_label_value(value)}"' for name, value in zip(self.labels, values, strict=True)]
        if extra:
            pairs.append(extra)
        return "{" + ",".join(pairs) + "}" if pairs else ""

    def samples(self) -> Iterator[str]:
        raise NotImplementedError

    def render(self) -> Iterator[str]:
        yield f"# HELP {self.name} {_help(self.help)}"
        yield f"# TYPE {self.name} {self.kind}"
        yield from self.samples()


_FamilyT = TypeVar("_FamilyT", bound=_Family)


class _Scalar(_Family):
    """A family whose series each hold one number: a counter or a gauge."""

    def __init__(self, name: str, help_text: str, labels: Sequence[str]) -> None:
        super().__init__(name, help_text, labels)
        self._series: dict[Labels, float] = {}

    def value(self, *values: str) -> float:
        with self._lock:
            return self._series.get(values, 0.0)

    def samples(self) -> Iterator[str]:
        with self._lock:
            series = sorted(self._series.items())
        for values, number in series:
            yield f"{self.name}{self._selector(values)} {_number(number)}"


class Counter(_Scalar):
    kind = "counter"

    def inc(self, *values: str, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        self._check(values)
        with self._lock:
            self._series[values] = self._series.get(values, 0.0) + amount


class Gauge(_Scalar):
    kind = "gauge"

    def set(self, *values: str, value: float) -> None:
        self._check(values)
        with self._lock:
            self._series[values] = value

    def replace(self, series: Mapping[Labels, float]) -> None:
        """Every series at once (a gauge read afresh at each scrape): those not given are gone."""
        for values in series:
            self._check(values)
        with self._lock:
            self._series = dict(series)


class _Buckets:
    __slots__ = ("counts", "sum")

    def __init__(self, size: int) -> None:
        self.counts = [0] * size
        self.sum = 0.0


class Histogram(_Family):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, labels: Sequence[str], buckets: Sequence[float]) -> None:
        super().__init__(name, help_text, labels)
        if "le" in self.labels:
            raise ValueError("`le` is the histogram's own label")
        if list(buckets) != sorted(set(buckets)) or not buckets:
            raise ValueError("buckets must be increasing")
        self.buckets = tuple(float(b) for b in buckets if not math.isinf(b))
        self._series: dict[Labels, _Buckets] = {}

    def observe(self, *values: str, value: float) -> None:
        self._check(values)
        slot = bisect_left(self.buckets, value)  # the first bound >= value; past the last, the +Inf slot
        with self._lock:
            series = self._series.get(values)
            if series is None:
                series = self._series[values] = _Buckets(len(self.buckets) + 1)
            series.counts[slot] += 1
            series.sum += value

    def count(self, *values: str) -> int:
        with self._lock:
            series = self._series.get(values)
            return 0 if series is None else sum(series.counts)

    def samples(self) -> Iterator[str]:
        with self._lock:
            copied = sorted((values, list(s.counts), s.sum) for values, s in self._series.items())
        for values, counts, total in copied:
            cumulative = 0
            for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
                cumulative += count
                le = f'le="{_number(bound)}"' if math.isinf(bound) else f'le="{bound!r}"'
                yield f"{self.name}_bucket{self._selector(values, le)} {cumulative}"
            yield f"{self.name}_sum{self._selector(values)} {_number(total)}"
            yield f"{self.name}_count{self._selector(values)} {cumulative}"


class Registry:
    """The families a scrape shows, in the order they were made."""

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}

    def _add(self, family: _FamilyT) -> _FamilyT:
        if family.name in self._families:
            raise ValueError(f"{family.name} is already registered")
        self._families[family.name] = family
        return family

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        return self._add(Counter(name, help_text, labels))

    def gauge(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Gauge:
        return self._add(Gauge(name, help_text, labels))

    def histogram(self, name: str, help_text: str, labels: Sequence[str], buckets: Sequence[float]) -> Histogram:
        return self._add(Histogram(name, help_text, labels, buckets))

    def families(self) -> tuple[_Family, ...]:
        return tuple(self._families.values())

    def render(self) -> str:
        """The text format: each family's HELP and TYPE, then its samples; the whole ends with a line feed."""
        lines = [line for family in self._families.values() for line in family.render()]
        return "\n".join(lines) + "\n"
