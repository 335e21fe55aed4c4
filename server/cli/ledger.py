"""`planner-mcp ledger verify|checkpoint|tail|stats|export`: read the ledger, never write it.

Every command reads a snapshot through a read-only connection, so it can run beside live servers and on a
copy an auditor was handed.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ledger import EXIT_CODES, Report, checkpoint, verify
from ledger.reader import Snapshot, chained_rows, read_only
from ledger.verify import load_checkpoints
from server.config.ledger import ledger_key
from server.config.settings import Settings
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


def run_ledger(settings: Settings, args: argparse.Namespace) -> int:
    path = settings.ledger_path
    match args.ledger_command:
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
