"""The counts per day the ledger gives, as the series a chart draws: days gathered into weeks or months when there
are too many to show one bar each, and the few busiest agents named, the rest together.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

__all__ = ["DECISIONS", "MOST_BARS", "OTHERS", "Periods", "Series", "by_period", "period_of"]

DECISIONS = ("EXECUTE", "ESCALATE", "INSUFFICIENT_INFORMATION", "SKIP", "ERROR")
"""The decisions the gate records, in the order a chart stacks them."""

OTHERS = "(others)"
"""The series that holds whatever a chart has no series of its own for."""

MOST_BARS = 400
"""The most periods a chart draws: the newest. Only a ledger whose dates were tampered with spans more."""

_MOST_DAYS = 92
_MOST_WEEKS = 104


@dataclass(frozen=True)
class Series:
    name: str
    values: list[int]
    """One count per period, in the periods' order."""

    @property
    def total(self) -> int:
        return sum(self.values)


@dataclass(frozen=True)
class Periods:
    labels: list[str]
    series: list[Series]
    dropped: int
    """Periods older than the `MOST_BARS` drawn, left out."""


def period_of(days: Iterable[str]) -> str:
    """The period one bar covers: `day` for up to a quarter's days, `week` (from Monday) up to two years, else
    `month`."""
    known = [d for d in (_day(text) for text in days) if d is not None]
    if not known:
        return "day"
    span = (max(known) - min(known)).days + 1
    return "day" if span <= _MOST_DAYS else "week" if span <= _MOST_WEEKS * 7 else "month"


def by_period(
    rows: Iterable[tuple[str, str, int]], period: str, *, names: Sequence[str] = (), most: int = 0
) -> Periods:
    """The periods and their series from (day, name, count) rows: every period from the first to the last (empty
    ones too, so the axis is time; the newest `MOST_BARS`), and a series per name, in the order of `names` and then
    by total; beyond `most` series (when given), the smallest are summed into `OTHERS`. A day that is no date (a row
    written by hand) is a period of its own, after the others."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for day, name, count in rows:
        counts[name][_label(day, period)] += int(count)
    every = _periods({label for per in counts.values() for label in per}, period)
    labels = every[-MOST_BARS:]
    totals = {name: sum(per.values()) for name, per in counts.items()}
    order = [n for n in names if n in counts] + sorted(set(counts) - set(names), key=lambda n: (-totals[n], n))
    kept, rest = (order[: most - 1], order[most - 1 :]) if most and len(order) > most else (order, [])
    series = [Series(name, [counts[name].get(label, 0) for label in labels]) for name in kept]
    if rest:
        series.append(Series(OTHERS, [sum(counts[n].get(label, 0) for n in rest) for label in labels]))
    return Periods(labels, series, len(every) - len(labels))


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        return None


def _label(text: str, period: str) -> str:
    day = _day(text)
    if day is None:
        return str(text)
    if period == "week":
        return (day - timedelta(days=day.weekday())).isoformat()
    return day.isoformat()[:7] if period == "month" else day.isoformat()


def _periods(found: set[str], period: str) -> list[str]:
    dated = sorted(label for label in found if _day(label if period != "month" else label + "-01") is not None)
    odd = sorted(found - set(dated))
    if not dated:
        return odd
    step = {"day": 1, "week": 7}.get(period)
    if step is None:  # months: every month from the first to the last
        first, last = (int(dated[0][:4]), int(dated[0][5:7])), (int(dated[-1][:4]), int(dated[-1][5:7]))
        months = range(first[0] * 12 + first[1] - 1, last[0] * 12 + last[1])
        return [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in months] + odd
    start, end = date.fromisoformat(dated[0]), date.fromisoformat(dated[-1])
    return [(start + timedelta(days=n)).isoformat() for n in range(0, (end - start).days + 1, step)] + odd
