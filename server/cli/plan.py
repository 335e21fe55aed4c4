"""`planner-mcp plan "DESCRIPTION"` and `planner-mcp analyze "QUESTION"`: the seed's command line, run as one call
of `generate_plan` or `analyze` through the same gate and ledger as any host's, and printed for a person (or, with
`--json`, as the AgentOutput the ledger's digest covers).

The model may take half a minute: on a terminal, stderr shows what the call is waiting for, on one line rewritten
in place and cleared before the answer is printed; stdout carries the answer only. Exit 1 when the decision is
ERROR; an ESCALATE exits 0, as the call itself succeeded, and says in words that a human must decide.
"""

import argparse
import json
import sys
from typing import Any

import anyio

from contracts import Decision
from server.app.runtime import call_once
from server.app.views import AgentView
from server.call.progress import ReportProgress
from server.cli.plan_text import render
from server.config.ledger import ledger_key
from server.config.settings import Settings, SettingsError
from server.support.terminal import escape, say, say_json

__all__ = ["add_plan_commands", "run_plan"]

_EXIT_ERROR = 1
_TOOLS = {"plan": "generate_plan", "analyze": "analyze"}


def add_plan_commands(commands: Any) -> None:
    plan = commands.add_parser(
        "plan", help="ask for an implementation plan (generate_plan) through the gate and ledger, and print it"
    )
    plan.add_argument("description", help="what to plan, in plain language")
    plan.add_argument(
        "--constraint", action="append", default=[], metavar="TEXT", help="a rule the plan must respect (repeatable)"
    )
    analyze = commands.add_parser(
        "analyze", help="ask for an analysis of a question (analyze) through the gate and ledger, and print it"
    )
    analyze.add_argument("description", metavar="question", help="what to analyse, in plain language")
    for command in (plan, analyze):
        command.add_argument("--context", metavar="JSON", help="facts to take into account, as a JSON object")
        command.add_argument(
            "--doc", action="append", default=[], metavar="NAME", help="a runbook (list_docs) to follow (repeatable)"
        )
        command.add_argument("--json", action="store_true", help="print the AgentOutput the ledger's digest covers")


def run_plan(settings: Settings, args: argparse.Namespace, view: AgentView) -> int:
    """Run the command as `view`'s agent: exit 0 with an answer (EXECUTE or ESCALATE), 1 on ERROR."""
    arguments = _arguments(args)
    key = ledger_key(settings)

    async def run() -> int:
        shown = _Progress() if sys.stderr.isatty() else None
        report: ReportProgress | None = shown.report if shown is not None else None
        try:
            output = await call_once(settings, view, _TOOLS[args.command], arguments, chain_key=key, report=report)
        finally:
            if shown is not None:
                shown.clear()
        if args.json:
            # The bytes whose digest the ledger's outcome holds (a character unsafe on a terminal as its \\u escape).
            say_json(output.sealed_json())
        else:
            say(*render(output, args.description))
        return _EXIT_ERROR if output.decision is Decision.ERROR else 0

    return anyio.run(run)


def _arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The tool's arguments from the command line. Only `--context` is checked here, for being a JSON object at
    all (a usage error, as `ledger migrate --to` has); the rest is the gate's to judge, so a bad value is refused
    and recorded like any caller's."""
    arguments: dict[str, Any] = {"description": args.description}
    if args.context is not None:
        try:
            context = json.loads(args.context)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"--context is not valid JSON: {exc}") from None
        if not isinstance(context, dict):
            raise SettingsError("--context must be a JSON object")
        arguments["context"] = context
    if args.doc:
        arguments["docs"] = args.doc
    if getattr(args, "constraint", None):
        arguments["constraints"] = args.constraint
    return arguments


class _Progress:
    """The call's progress notifications as one stderr line, rewritten in place: for a person at a terminal."""

    def __init__(self) -> None:
        self._shown = False

    async def report(self, progress: float, total: float | None, message: str | None) -> None:
        of = f" of {total:.0f} s" if total else ""
        sys.stderr.write(f"\r\x1b[Kplanner-mcp: {escape(message or 'working')} ({progress:.0f} s{of})")
        sys.stderr.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
