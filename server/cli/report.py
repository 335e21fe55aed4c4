"""`planner-mcp ledger report --html FILE [--since DATE]`: the ledger as one HTML page an auditor can read.

It verifies the chain as `ledger verify` does, counts the figures in the database up to the head it verified, and
writes the page atomically (a temporary file beside it, renamed over it), readable by its owner only, as the
ledger is. It exits as `ledger verify` does (0 intact, 1 tampered, 3 incomplete calls, 4 could not verify), and the
page is written whenever the ledger could be read: a broken chain is said at the page's top, and on stderr.
"""

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger import EXIT_CODES, Report, utc_now, verify
from ledger.engines import locate
from ledger.storage import describe
from server.cli.replay import add_since_argument
from server.config.ledger import ledger_key
from server.config.settings import Settings
from server.governance.policy import PolicyError
from server.governance.roster import load_roster
from server.support.terminal import say

if TYPE_CHECKING:
    from ledger.figures import Figures

__all__ = ["add_report_command", "run_report"]

_EXIT_USAGE = 2


def add_report_command(sub: Any) -> None:
    cmd = sub.add_parser(
        "report",
        help="verify, then write one self-contained HTML page: verify status and head hash, calls per day by decision "
        "and agent, refusals and errors, escalations, tokens, the slowest calls; exits as verify does",
    )
    cmd.add_argument("--html", required=True, type=Path, metavar="FILE", help="where to write the page")
    add_since_argument(cmd)


def run_report(settings: Settings, args: argparse.Namespace) -> int:
    # Imported here: the page's modules are for this command alone, and every server start parses the command line.
    from ledger.figures import gather
    from server.report import Context, render

    storage = locate(settings.ledger_path)
    where = describe(storage.where)
    verified = verify(storage, key=ledger_key(settings), progress=_progress())
    _say_progress(f"verified {verified.rows:,} rows: {verified.status}; counting the figures")
    with storage.snapshot() as conn:
        figures = gather(conn, upto=verified.head_seq, since=args.since or "")
    page = render(figures, verified, Context(ledger=where, generated=utc_now(), thresholds=_thresholds(settings)))
    try:
        _write(args.html, page)
    except OSError as exc:
        say(f"planner-mcp: cannot write the report to {args.html}: {exc.strerror or exc}", file=sys.stderr)
        return _EXIT_USAGE
    _say_progress("", end=True)
    say(_summary(args.html, figures, verified, where))
    if verified.status == "tampered":
        say(
            f"planner-mcp: THE CHAIN IS BROKEN: {len(verified.findings)} problem(s); the report says so at its top, "
            "and `planner-mcp ledger verify` lists them",
            file=sys.stderr,
        )
    return EXIT_CODES[verified.status]


def _summary(html: Path, figures: "Figures", verified: Report, where: str) -> str:
    window = f"since {figures.since}" if figures.since else "all recorded"
    return (
        f"report {html}: {figures.calls:,} calls ({window}); ledger {where}: {verified.rows:,} rows, head seq "
        f"{verified.head_seq} {verified.head_hash}: {verified.status.upper()}"
    )


def _thresholds(settings: Settings) -> dict[str, float] | None:
    """Each agent's confidence threshold in today's configuration, or None when it cannot be read."""
    try:
        roster = load_roster(settings)
    except PolicyError:
        return None
    return {agent_id: agent.confidence_threshold for agent_id, agent in roster.agents.items()}


def _write(path: Path, page: str) -> None:
    """Write `page` to `path` whole or not at all: a reader never finds half a report, and an old one stays until
    the new one is complete."""
    folder = path.absolute().parent
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(page)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _progress() -> Callable[[int], None] | None:
    """Rows verified so far, on one line rewritten in place: only for a person watching a terminal."""
    if not sys.stderr.isatty():
        return None
    return lambda rows: _say_progress(f"verified {rows:,} rows")


def _say_progress(what: str, *, end: bool = False) -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\n" if end else f"\r\x1b[Kplanner-mcp: {what}")
        sys.stderr.flush()
