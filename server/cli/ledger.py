"""`planner-mcp ledger verify|checkpoint|tail|stats|export|replay|report`: read the ledger, never write it; and
`ledger init|migrate`, which make a PostgreSQL ledger and fill it from a SQLite one.

Every reading command reads a snapshot through a read-only connection, so it can run beside live servers and
on a copy an auditor was handed. Every ledger is named as `ledger.storage.describe` shows it: a URL never with
its password.
"""

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ledger import EXIT_CODES, Report, checkpoint, verify
from ledger.engines import locate
from ledger.migrate import Progress, migrate
from ledger.reader import Snapshot, chained_rows, read_only
from ledger.storage import describe, is_postgres_url
from ledger.verify import load_checkpoints
from server.cli.replay import add_replay_command, run_replay
from server.cli.report import add_report_command, run_report
from server.config.ledger import ledger_key
from server.config.settings import Settings, SettingsError
from server.support.terminal import say, say_json

__all__ = ["add_ledger_commands", "run_ledger"]

_EXIT_UNREADABLE = EXIT_CODES["unverified"]


def add_ledger_commands(commands: Any) -> None:
    ledger = commands.add_parser("ledger", help="read, verify and export the audit ledger")
    sub = ledger.add_subparsers(dest="ledger_command", metavar="LEDGER_COMMAND", required=True)

    verify_cmd = sub.add_parser(
        "verify",
        help="check every hash and link; exit 0 intact, 1 tampered, 3 incomplete calls, 4 could not verify",
    )
    verify_cmd.add_argument(
        "--checkpoint",
        type=Path,
        metavar="FILE",
        help="checkpoints printed earlier by `ledger checkpoint` (one per line): also detects deleted newest "
        "rows and a recomputed chain",
    )
    verify_cmd.add_argument("--json", action="store_true", help="print the report as JSON")

    sub.add_parser(
        "checkpoint", help="verify, then print the chain's head as one JSON line to keep somewhere the server "
        "cannot write"
    )  # fmt: skip

    tail = sub.add_parser("tail", help="the newest recorded calls")
    tail.add_argument("-n", "--lines", type=int, default=20)
    tail.add_argument("--json", action="store_true", help="one JSON object per line")

    stats = sub.add_parser("stats", help="per agent: runs, compliant runs, refusals, errors, tokens")
    stats.add_argument("--json", action="store_true")

    export = sub.add_parser("export", help="every chained row in order, with its hashes, for offline audit")
    export.add_argument("--format", choices=["jsonl"], default="jsonl")
    export.add_argument("--after-seq", type=int, default=0, metavar="N", help="only rows after seq N")

    add_replay_command(sub)
    add_report_command(sub)

    init = sub.add_parser(
        "init", help="PostgreSQL: make the ledger's schema and roles (run as the role that will own them)"
    )
    init.add_argument(
        "--print-sql", action="store_true", help="print the SQL instead, for a DBA to apply (connects to nothing)"
    )
    migrate_cmd = sub.add_parser(
        "migrate", help="copy the SQLite ledger, every row and hash as stored, into an empty PostgreSQL ledger"
    )
    migrate_cmd.add_argument("--to", required=True, metavar="URL", help="the postgresql:// URL of the new ledger")


def run_ledger(settings: Settings, args: argparse.Namespace) -> int:
    with _driver():
        if args.ledger_command == "replay":
            return run_replay(settings, args)
        if args.ledger_command == "report":
            return run_report(settings, args)
        return _run(settings, args)


def _run(settings: Settings, args: argparse.Namespace) -> int:
    path = settings.ledger_path
    match args.ledger_command:
        case "init":
            return _init(settings, print_sql=args.print_sql)
        case "migrate":
            return _migrate(settings, args.to)
        case "verify":
            checkpoints = load_checkpoints(args.checkpoint) if args.checkpoint else []
            report = verify(path, key=ledger_key(settings), checkpoints=checkpoints)
            _print_report(report, as_json=args.json)
            return EXIT_CODES[report.status]
        case "checkpoint":
            anchor, report = checkpoint(path, key=ledger_key(settings))
            if anchor is None:
                _print_report(report, as_json=False, out=sys.stderr)
                why = "the chain is broken" if report.status == "tampered" else "its keyed rows need the key to check"
                say(f"planner-mcp: no checkpoint: {why}", file=sys.stderr)
                return EXIT_CODES[report.status]
            say_json(anchor.to_json())
            return 0
        case "tail":
            return _tail(Snapshot(path).tail(args.lines), as_json=args.json)
        case "stats":
            return _stats(Snapshot(path).stats(), as_json=args.json)
        case "export":
            with read_only(path) as conn:
                for row in chained_rows(conn, after_seq=args.after_seq):
                    say_json(json.dumps({"table": row.table, **row.row}, ensure_ascii=False))
            return 0
    raise AssertionError(f"unhandled ledger command {args.ledger_command!r}")


def _init(settings: Settings, *, print_sql: bool) -> int:
    if print_sql:  # no driver, no database, no URL needed
        from ledger.postgres.init import schema_sql

        sys.stdout.write(schema_sql())
        return 0
    url = settings.ledger_url
    if url is None:
        # Nothing is made here: the server makes a SQLite ledger on its first call, as its own user, with the
        # file private to that user. Made by `init` (often run by an administrator), it could belong to another.
        say(
            f"PLANNER_MCP_LEDGER is the SQLite file {settings.ledger_path}: a SQLite ledger is made by the server "
            "on its first call, so there is nothing to initialise. For a PostgreSQL ledger, set "
            "PLANNER_MCP_LEDGER=postgresql://... and run this again as the role that will own the schema."
        )
        return 0
    from ledger.postgres.init import initialise

    say(initialise(url, busy_timeout_s=settings.ledger_busy_timeout_s))
    return 0


def _migrate(settings: Settings, to: str) -> int:
    if not is_postgres_url(to):
        raise SettingsError(f"--to must be a postgresql:// URL, not {describe(to)!r}")
    if settings.ledger_url is not None:
        raise SettingsError(
            f"PLANNER_MCP_LEDGER is already a PostgreSQL ledger ({describe(settings.ledger_url)}): migrate copies a "
            "SQLite ledger; set PLANNER_MCP_LEDGER to its file"
        )
    key = ledger_key(settings)
    target = locate(to, busy_timeout_s=settings.ledger_busy_timeout_s)
    done = migrate(locate(settings.ledger_path), target, key=key, progress=_progress(),
                   busy_timeout_s=settings.ledger_busy_timeout_s)  # fmt: skip
    say(
        f"migrated {done.rows} chained rows (head seq {done.head_seq} {done.head_hash}) and {done.metrics} "
        f"agent_metrics rows from {done.source} to {done.target}"
    )
    report = verify(target, key=key)
    _print_report(report, as_json=False)
    return EXIT_CODES[report.status]


def _progress() -> Progress | None:
    """Rows copied so far, on one line rewritten in place: only for a person watching a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        sys.stderr.write(f"\rplanner-mcp: copied {done:,} of {total:,} rows" + ("\n" if done >= total else ""))
        sys.stderr.flush()

    return show


@contextmanager
def _driver() -> Iterator[None]:
    """PostgreSQL's driver is an extra: without it, say which to install rather than fail with a traceback."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.partition(".")[0] not in ("psycopg", "psycopg_pool"):
            raise
        raise SettingsError(
            "PostgreSQL ledgers need the postgres extra, which is not installed: pip install 'planner-mcp[postgres]'"
        ) from None


def _print_report(report: Report, *, as_json: bool, out: Any = None) -> None:
    out = out or sys.stdout
    if as_json:
        payload = {
            "ledger": str(report.path),
            "status": report.status,
            "rows": report.rows,
            "head": {"seq": report.head_seq, "hash": report.head_hash},
            "keyed_rows": report.keyed_rows,
            "findings": [{"kind": f.kind, "seq": f.seq, "detail": f.detail} for f in report.findings],
        }
        say_json(json.dumps(payload, indent=2), file=out)
        return
    keyed = f", {report.keyed_rows} keyed (HMAC)" if report.keyed_rows else ""
    say(
        f"ledger {report.path}: {report.rows} rows, head seq {report.head_seq} {report.head_hash}{keyed}",
        *(f"  {finding}" for finding in report.findings),
        report.status.upper(),
        file=out,
    )


def _tail(rows: list[dict[str, Any]], *, as_json: bool) -> int:
    for row in rows:
        if as_json:
            say_json(json.dumps(row, ensure_ascii=False))
            continue
        error = f" {row['error_type']}: {row['error_message']}" if row["error_type"] else ""
        say(
            f"{row['seq'] or '-':>7} {row['timestamp']} {row['agent_id']} {row['action']:<16} "
            f"{row['decision']:<9} conf={row['confidence']:.2f} {row['duration_ms'] or 0:.1f}ms{error}"
        )
    return 0


def _stats(rows: list[dict[str, Any]], *, as_json: bool) -> int:
    if as_json:
        say_json(json.dumps(rows, indent=2))
        return 0
    header = ("agent", "tier", "runs", "compliant", "consecutive", "refused", "errors", "tokens", "last active")
    say("{:<24} {:>4} {:>7} {:>9} {:>11} {:>7} {:>6} {:>9}  {}".format(*header))
    for row in rows:
        tokens = row["prompt_tokens"] + row["completion_tokens"]
        say(
            f"{row['agent_id']:<24} {row['current_tier'] if row['current_tier'] is not None else '-':>4} "
            f"{row['total_runs']:>7} {row['compliant_runs']:>9} {row['consecutive_compliant']:>11} "
            f"{row['refused_runs']:>7} {row['error_runs']:>6} {tokens:>9}  {row['last_active_at'] or '-'}"
        )
    return 0
