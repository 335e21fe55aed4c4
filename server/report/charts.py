"""The report's charts, drawn here as inline SVG: no library, no script, nothing fetched.

Each chart carries its legend inside its own SVG, so a page whose SVG does not render shows none of a chart's
colours. Every name drawn is text from the ledger and goes through `text`, as everything on the page does.
"""

import math
from collections.abc import Mapping, Sequence

from server.report.series import OTHERS, Periods
from server.report.text import text

__all__ = ["AGENT_COLOURS", "DECISION_COLOURS", "OTHERS_COLOUR", "TOKEN_COLOURS", "agent_colours", "bars", "columns"]

DECISION_COLOURS = {
    "EXECUTE": "#2e7d32",
    "ESCALATE": "#ef8f00",
    "INSUFFICIENT_INFORMATION": "#1f5fbf",
    "SKIP": "#8e5cc4",
    "ERROR": "#c62828",
}
AGENT_COLOURS = ("#4e79a7", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#f28e2b")
TOKEN_COLOURS = {"prompt": "#3b6ea8", "completion": "#d9822b"}
OTHERS_COLOUR = "#9a9a9a"
"""For `OTHERS`, and for a decision that is none of the gate's (a row written by hand)."""

_WIDTH = 960
_LEFT, _RIGHT, _BOTTOM = 64, 16, 40
_LEGEND_COLUMNS, _LEGEND_COLUMN_WIDTH, _LEGEND_ROW = 4, 236, 20
_PLOT_HEIGHT = 200
_WIDEST_BAR = 48
_BAR_ROW = 26
_MOST_X_LABELS = 8


def agent_colours(names: Sequence[str]) -> dict[str, str]:
    """A colour for each agent series, in order, and grey for the others."""
    return {name: OTHERS_COLOUR if name == OTHERS else AGENT_COLOURS[i % len(AGENT_COLOURS)]
            for i, name in enumerate(names)}  # fmt: skip


def columns(title: str, periods: Periods, colours: Mapping[str, str]) -> str:
    """Stacked columns, one per period, a layer per series; the y axis from 0 to a round number above the tallest."""
    labels, series = periods.labels, periods.series
    top = _legend_height(len(series))
    height = top + _PLOT_HEIGHT + _BOTTOM
    scale = _ceiling(max((sum(values) for values in zip(*(s.values for s in series), strict=True)), default=0))
    plot = _WIDTH - _LEFT - _RIGHT
    slot = plot / max(1, len(labels))
    bar = min(slot * 0.8, _WIDEST_BAR) if slot >= 4 else slot
    parts = [_open(title, height), *_legend([(s.name, colours.get(s.name, OTHERS_COLOUR)) for s in series])]
    parts += _y_axis(scale, top)
    base = [0] * len(labels)
    for s in series:
        parts.append(f'<g fill="{colours.get(s.name, OTHERS_COLOUR)}">')
        for i, value in enumerate(s.values):
            if value <= 0:
                continue
            y0 = top + _PLOT_HEIGHT * (1 - (base[i] + value) / scale)
            h = _PLOT_HEIGHT * value / scale
            x = _LEFT + i * slot + (slot - bar) / 2
            parts.append(
                f'<rect x="{x:.2f}" y="{y0:.2f}" width="{bar:.2f}" height="{max(h, 0.5):.2f}">'
                f"<title>{text(labels[i])} {text(s.name)}: {value:,}</title></rect>"
            )
            base[i] += value
        parts.append("</g>")
    step = max(1, math.ceil(len(labels) / _MOST_X_LABELS))
    for i in range(0, len(labels), step):
        x = _LEFT + i * slot + slot / 2
        parts.append(f'<text x="{x:.2f}" y="{top + _PLOT_HEIGHT + 18}" text-anchor="middle">{text(labels[i])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bars(title: str, rows: Sequence[tuple[str, Sequence[int]]], colours: Mapping[str, str]) -> str:
    """Stacked horizontal bars, one per row (its name on the left), a layer per entry of `colours`, in order."""
    names = list(colours)
    top = _legend_height(len(names))
    height = top + _BAR_ROW * max(1, len(rows)) + _BOTTOM
    left = 200
    plot = _WIDTH - left - _RIGHT - 96
    scale = _ceiling(max((sum(values) for _, values in rows), default=0))
    parts = [_open(title, height), *_legend([(name, colours[name]) for name in names])]
    for row, (label, values) in enumerate(rows):
        y = top + row * _BAR_ROW
        parts.append(f'<text x="{left - 8}" y="{y + 17}" text-anchor="end">{text(_short(label, 28))}</text>')
        x = float(left)
        for name, value in zip(names, values, strict=True):
            if value <= 0:
                continue
            w = max(plot * value / scale, 0.5)
            parts.append(
                f'<rect x="{x:.2f}" y="{y + 4}" width="{w:.2f}" height="{_BAR_ROW - 8}" fill="{colours[name]}">'
                f"<title>{text(label)} {text(name)}: {value:,}</title></rect>"
            )
            x += w
        parts.append(f'<text x="{x + 6:.2f}" y="{y + 17}">{sum(values):,}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _open(title: str, height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" viewBox="0 0 {_WIDTH} {height}"'
        f' role="img" shape-rendering="crispEdges" font-size="12"><title>{text(title)}</title>'
    )


def _legend_height(entries: int) -> int:
    return 12 + _LEGEND_ROW * max(1, math.ceil(entries / _LEGEND_COLUMNS))


def _legend(entries: Sequence[tuple[str, str]]) -> list[str]:
    parts = []
    for i, (name, colour) in enumerate(entries):
        x = _LEFT + (i % _LEGEND_COLUMNS) * _LEGEND_COLUMN_WIDTH
        y = 6 + (i // _LEGEND_COLUMNS) * _LEGEND_ROW
        parts.append(
            f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{x + 18}" y="{y + 11}">{text(_short(name, 30))}<title>{text(name)}</title></text>'
        )
    return parts


def _y_axis(scale: int, top: int) -> list[str]:
    parts = []
    for tick in range(5):
        value = scale * tick // 4
        y = top + _PLOT_HEIGHT * (1 - tick / 4)
        parts.append(
            f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.2f}" y2="{y:.2f}" stroke="#dddddd"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.2f}" text-anchor="end">{value:,}</text>'
        )
    return parts


def _ceiling(largest: int) -> int:
    """The top of the y axis: four times a round tick (1, 1.2, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten,
    or a whole number under ten), so every gridline is a whole, round count."""
    tick = max(1, math.ceil(largest / 4))
    if tick < 10:
        return 4 * tick
    power = 10 ** int(math.log10(tick))
    return 4 * next(int(m * power) for m in (1, 1.2, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * power >= tick)


def _short(name: str, most: int) -> str:
    return name if len(name) <= most else name[: most - 1] + "…"
