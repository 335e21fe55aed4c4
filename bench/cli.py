"""`python -m bench`: the whole benchmark, one command; a table on stdout and every figure in a JSON file.

Exit status 0 when every target is met, 1 when one is missed, 2 on a usage error.
"""

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TextIO

import anyio

from bench import sections
from bench.llm_peer import llm_peer
from bench.postgres import postgres_ledger
from bench.processes import compile_bytecode
from bench.report import render
from bench.targets import judge
from bench.telemetry import telemetry_cost
from bench.throughput import throughput
from bench.workspace import Workspace, capture_fixture, make_data_dir

__all__ = ["FULL", "QUICK", "Profile", "main", "run"]

SECTIONS = ("cold", "reads", "throughput", "llm", "ledger", "growth", "postgres", "report", "telemetry")


@dataclass(frozen=True)
class Profile:
    """How much to measure. FULL is what the targets are judged on; QUICK checks the harness end to end."""

    cold_runs: int = 20
    read_calls: int = 2000
    batch: int = 50
    # Throughput: calls of each server at each number in flight, in batches of this many, taking turns.
    throughput_calls: int = 2000
    throughput_batch: int = 100
    concurrencies: tuple[int, ...] = (1, 8, 32)
    llm_calls: int = 300
    llm_delay_ms: float = 20.0
    ledger_calls: int = 3000
    shared_processes: int = 4
    shared_calls: int = 1000
    ledger_sizes: tuple[int, ...] = (1_000, 100_000, 1_000_000)
    doc_sizes: tuple[int, ...] = (1_024, 100 * 1_024, 1_024 * 1_024)
    # Judged at 10% apart, the ledger sizes need more calls than the 1 MB documents can afford.
    ledger_growth_calls: int = 1000
    doc_growth_calls: int = 300
    # The ledger on PostgreSQL: calls recorded (two appends each) by one writer, then shared by the writers.
    postgres_writers: int = 8
    postgres_calls: int = 2000
    # `ledger report` on a ledger of this many rows (issue 26: under 30 s).
    report_rows: int = 1_000_000


FULL = Profile()
QUICK = Profile(
    cold_runs=2,
    read_calls=40,
    batch=10,
    throughput_calls=64,
    throughput_batch=32,
    llm_calls=10,
    llm_delay_ms=10.0,
    ledger_calls=50,
    shared_calls=25,
    ledger_sizes=(100, 1_000, 3_000),
    doc_sizes=(1_024, 10 * 1_024, 100 * 1_024),
    ledger_growth_calls=20,
    doc_growth_calls=20,
    postgres_calls=80,
    report_rows=3_000,
)


async def run(profile: Profile, root: Path, cache: Path, only: tuple[str, ...], errlog: TextIO) -> dict[str, Any]:
    """Every section asked for, in order; the figures, with what they were measured on."""
    results: dict[str, Any] = {"meta": _meta(profile, only)}
    compile_bytecode()
    data = make_data_dir(root, profile.doc_sizes)
    with llm_peer(profile.llm_delay_ms / 1000) as base_url:
        ws = await capture_fixture(root, data, base_url, errlog)
        results.update(await _fast_sections(ws, profile, only, errlog))
        if "llm" in only:
            _progress("LLM tools")
            results["llm"] = await sections.llm_overhead(
                ws, profile.llm_calls, profile.batch, profile.llm_delay_ms, errlog
            )
        if "ledger" in only:
            _progress("ledger appends")
            results["ledger"] = await anyio.to_thread.run_sync(
                sections.ledger_appends, root, profile.ledger_calls, profile.shared_processes, profile.shared_calls
            )
        if "growth" in only:
            _progress("growth: ledger size (the first run fills and caches the ledgers)")
            growth: dict[str, Any] = {}
            growth["ledger"] = await sections.ledger_growth(
                ws, profile.ledger_sizes, profile.ledger_growth_calls, profile.batch, cache, errlog
            )
            _progress("growth: document size")
            growth["documents"] = await sections.doc_growth(
                ws, profile.doc_sizes, profile.doc_growth_calls, profile.batch, errlog
            )
            results["growth"] = growth
        if "postgres" in only:
            _progress("the ledger on PostgreSQL (starts its own server)")
            results["postgres"] = await postgres_ledger(
                ws, profile.read_calls, profile.batch, profile.postgres_writers, profile.postgres_calls, errlog
            )
            if skipped := results["postgres"].get("skipped"):
                _progress(f"PostgreSQL section skipped: {skipped}")
        if "report" in only:
            _progress(f"ledger report of {profile.report_rows:,} rows (the first run fills and caches the ledger)")
            results["report"] = await anyio.to_thread.run_sync(sections.ledger_report, root, profile.report_rows, cache)
        if "telemetry" in only:
            _progress("telemetry off and on (Prometheus, OpenTelemetry to a loopback OTLP sink)")
            results["telemetry"] = await telemetry_cost(
                ws, profile.read_calls, profile.batch, profile.cold_runs, errlog
            )
    return results


async def _fast_sections(ws: Workspace, profile: Profile, only: tuple[str, ...], errlog: TextIO) -> dict[str, Any]:
    """Cold start, and the sections driven by the fast client (`bench.wire`): reads and throughput."""
    results: dict[str, Any] = {}
    if "cold" in only:
        _progress("cold start")
        results["cold_start"] = await sections.cold_starts(ws, profile.cold_runs, errlog)
    if "reads" in only:
        _progress("read tools and memory")
        results.update(await sections.read_latency(ws, profile.read_calls, profile.batch, errlog))
    if "throughput" in only:
        _progress("throughput at 1, 8 and 32 calls in flight, over stdio and HTTP")
        results["throughput"] = await anyio.to_thread.run_sync(
            throughput, ws, profile.throughput_calls, profile.throughput_batch, profile.concurrencies, errlog
        )
    return results


def _meta(profile: Profile, only: tuple[str, ...]) -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "sections": list(only),
        "profile": asdict(profile),
    }


def _progress(what: str) -> None:
    print(f"bench: {what}...", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few calls of each kind: checks the harness only")
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"), help="where to write the figures")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections to run, of {','.join(SECTIONS)}")
    parser.add_argument("--calls", type=int, help="read-tool calls per tool and server (default 2000)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "planner-mcp-bench",
        help="where filled ledgers are kept between runs",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    only = tuple(s.strip() for s in args.only.split(",") if s.strip())
    if unknown := set(only) - set(SECTIONS):
        print(f"bench: unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    profile = QUICK if args.quick else FULL
    if args.calls:
        profile = replace(profile, read_calls=args.calls)
    with tempfile.TemporaryDirectory(prefix="planner-mcp-bench-") as tmp:
        root = Path(tmp)
        log = root / "servers.log"
        with log.open("w", encoding="utf-8") as errlog:
            try:
                results = anyio.run(run, profile, root, args.cache, only, errlog)
            except Exception:
                errlog.flush()
                print(f"bench: failed; the servers' stderr ends with:\n{log.read_text()[-4000:]}", file=sys.stderr)
                raise
    verdicts = judge(results)
    results["targets"] = [v.as_dict() for v in verdicts]
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(render(results, verdicts))
    print(f"\nfigures: {args.json}")
    return 0 if all(v.ok for v in verdicts if v.value is not None) else 1
