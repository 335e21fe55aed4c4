"""`planner-mcp ledger replay --agents CANDIDATE.toml [--since DATE] [--json]`: how a candidate agents file would
have judged the calls the ledger records, before it ships.

It reads the ledger through a read-only snapshot and calls nothing. It exits like `diff`, so CI can gate a policy
change on it: 0 when nothing would change, 1 when something would (or a call cannot be judged), 2 when the
candidate or the ledger cannot be read. Arguments are never printed: they may hold a caller's context.
"""

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from ledger import LedgerError
from ledger.engines import locate
from ledger.history import RecordedCall, day_start, recorded_calls, since_timestamp
from ledger.storage import describe
from server.app.replay import Change, Report, ToolListChange, replay
from server.config.settings import Settings
from server.governance.policy import PolicyError
from server.governance.roster import Roster, load_agents_file, load_roster
from server.support.terminal import say, say_json

__all__ = [
    "EXIT_CHANGED",
    "EXIT_UNCHANGED",
    "EXIT_UNREADABLE",
    "add_replay_command",
    "add_since_argument",
    "run_replay",
]

EXIT_UNCHANGED = 0
EXIT_CHANGED = 1
EXIT_UNREADABLE = 2

_PROGRESS_EVERY = 10_000


def add_replay_command(sub: Any) -> None:
    cmd = sub.add_parser(
        "replay",
        help="judge the recorded calls again under a candidate agents file, calling nothing; exit 0 nothing would "
        "change, 1 something would, 2 the candidate or the ledger cannot be read",
    )
    cmd.add_argument("--agents", required=True, type=Path, metavar="CANDIDATE.toml", help="the candidate agents file")
    add_since_argument(cmd)
    cmd.add_argument("--json", action="store_true", help="print the report as one JSON object")


def add_since_argument(cmd: Any) -> None:
    """`--since DATE`, as every ledger command that reads calls from a date on takes it."""
    cmd.add_argument(
        "--since", type=_since, metavar="DATE", help="only calls from this ISO date or date and time on (UTC)"
    )


def _since(text: str) -> str:
    try:
        return since_timestamp(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or date and time: {text!r}") from None


def run_replay(settings: Settings, args: argparse.Namespace) -> int:
    try:
        candidate = load_agents_file(args.agents, "--agents")
    except PolicyError as exc:
        say(f"planner-mcp: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    roster = Roster(candidate.agents, issuers=candidate.issuers, source=args.agents)
    current, problem = _current(settings)
    storage = locate(settings.ledger_path)
    unreadable: tuple[type[BaseException], ...] = (LedgerError, *storage.errors)
    try:
        with ExitStack() as kept:
            with storage.snapshot() as conn:  # held while the calls are read, not while the report is printed
                calls = recorded_calls(conn, since=None if args.since is None else day_start(args.since))
                report = kept.enter_context(
                    replay(_shown(calls), roster, current=current, model=settings.llm.model, since=args.since,
                           candidate_name=str(args.agents))
                )  # fmt: skip
            if problem:
                report.notes.append(problem)
            _print(report, describe(storage.where), as_json=args.json)
            return EXIT_CHANGED if report.changed else EXIT_UNCHANGED
    except unreadable as exc:
        failure = exc if isinstance(exc, LedgerError) else storage.failed(exc)
        say(f"planner-mcp: the ledger cannot be read: {failure}", file=sys.stderr)
        return EXIT_UNREADABLE


def _current(settings: Settings) -> tuple[Roster | None, str]:
    """The configuration's own agents, whose tool lists stand for those the calls were made under."""
    try:
        return load_roster(settings), ""
    except PolicyError as exc:
        return None, f"The current configuration cannot be read ({exc}): the tools callers had before are not known."


def _shown(calls: Iterable[RecordedCall]) -> Iterator[RecordedCall]:
    """The calls, counted on one line rewritten in place: only for a person watching a terminal."""
    if not sys.stderr.isatty():
        yield from calls
        return
    count = 0
    for count, call in enumerate(calls, start=1):
        if count % _PROGRESS_EVERY == 0:
            sys.stderr.write(f"\rplanner-mcp: replayed {count:,} calls")
            sys.stderr.flush()
        yield call
    sys.stderr.write(f"\rplanner-mcp: replayed {count:,} calls\n")


def _print(report: Report, ledger: str, *, as_json: bool) -> None:
    if as_json:
        _print_json(report, ledger, sys.stdout)
    else:
        _print_text(report, ledger)


def _print_json(report: Report, ledger: str, out: TextIO) -> None:
    """One object, written a change at a time: the changes are never all in memory."""
    head = json.dumps({"ledger": ledger, "changed": report.changed, **report.summary()}, indent=2)
    say_json(head[: head.rindex("}")].rstrip() + ',\n  "changes": [', file=out)
    for index, change in enumerate(report.changes):
        say_json(("    " if index == 0 else "    ,") + json.dumps(asdict(change), ensure_ascii=False), file=out)
    say_json("  ]\n}", file=out)


def _print_text(report: Report, ledger: str) -> None:
    span = f"since {report.since}" if report.since else "all recorded"
    found = [f"{report.changes.count} calls would change"] if report.changes.count else []
    found += [f"{len(report.tool_lists)} callers' tool lists would change"] if report.tool_lists else []
    verdict = "; ".join(found) or "nothing would change"
    say(f"replayed {report.calls} calls ({span}) of {ledger} under {report.candidate}: {verdict}")
    header = ("agent", "calls", "allowed→refused", "refused→allowed", "budget", "callers moved", "cannot judge")
    say("  {:<24} {:>7} {:>15} {:>15} {:>6} {:>13} {:>12}".format(*header))
    for agent_id, c in report.agents.items():
        say(
            f"  {agent_id:<24} {c.calls:>7} {c.allowed_to_refused:>15} {c.refused_to_allowed:>15} "
            f"{c.budget_refusals:>6} {c.callers_moved:>13} {c.unjudged:>12}"
        )
    if report.changes.count:
        say("changes:")
        for change in report.changes:
            say(_change_line(change))
    if report.tool_lists:
        say("tool lists:")
        for entry in report.tool_lists:
            say(_list_line(entry))
    say("notes:", *(f"  {note}" for note in report.notes))


def _change_line(change: Change) -> str:
    before = f"{change.before} as {change.agent_before} (tier {change.tier_before})"
    after = change.after
    if change.agent_after is not None:
        after += f" as {change.agent_after} (tier {change.tier_after})"
    return (
        f"  {change.timestamp} {change.request_id} {change.caller} {change.action}: {before} → {after}: {change.reason}"
    )


def _list_line(entry: ToolListChange) -> str:
    def named(names: tuple[str, ...]) -> str:
        marks = {**dict.fromkeys(entry.called, " (called)"), **dict.fromkeys(entry.tried, " (refused when called)")}
        return ", ".join(name + marks.get(name, "") for name in names)

    moves = [f"loses {named(entry.vanish)}"] if entry.vanish else []
    moves += [f"gains {named(entry.appear)}"] if entry.appear else []
    agents = entry.agent_before
    if entry.agent_after != entry.agent_before:
        agents += f" → {entry.agent_after or 'no agent'}"
    stale = " (the current list is not the one recorded)" if entry.as_recorded is False else ""
    return f"  {entry.caller} [{agents}]: {'; '.join(moves)}{stale}"
