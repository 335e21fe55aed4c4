"""Ledger text as it goes into the page: HTML-escaped, and shown as what it holds.

Everything the ledger stores may have been chosen by someone else (a tool name a caller sent, an agent id, an
upstream's error message, a row an intruder wrote): escaped, no such text becomes markup. Control, bidirectional
and invisible characters are shown as escapes first (`server.support.terminal.escape`), as on a terminal, so a
name cannot look like another one.
"""

import html
from collections.abc import Collection, Iterable, Sequence

from server.support.terminal import escape

__all__ = ["table", "text"]


def text(value: object) -> str:
    """`value` as page text: never markup, never an invisible or reordering character. None is shown as "-"."""
    return "-" if value is None else html.escape(escape(str(value)), quote=True)


def table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], *, numeric: Collection[int] = (), name: str = ""
) -> str:
    """A table of `rows`, every cell escaped; the columns in `numeric` right-aligned, their numbers with separators.
    `name` is its id, by which a reader (or a test) finds it."""
    aligned = [' class="n"' if i in numeric else "" for i in range(len(headers))]
    parts = [f'<table id="{text(name)}">' if name else "<table>", "<tr>"]
    parts += [f"<th{aligned[i]}>{text(header)}</th>" for i, header in enumerate(headers)]
    parts.append("</tr>")
    empty = True
    for row in rows:
        empty = False
        shown = (_number(value) if i in numeric else value for i, value in enumerate(row))
        parts += ["<tr>", *(f"<td{aligned[i]}>{text(value)}</td>" for i, value in enumerate(shown)), "</tr>"]
    if empty:
        parts.append(f'<tr><td colspan="{len(headers)}" class="note">none</td></tr>')
    parts.append("</table>")
    return "".join(parts)


def _number(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"
