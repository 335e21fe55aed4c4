"""The measurements (PostgreSQL's, telemetry's and throughput's have modules of their own). Each returns plain
JSON-ready figures; `bench.targets` judges them."""

import os
import subprocess
import sys
import time
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import Any, TextIO

import anyio.to_thread

from bench.fill import cached_ledger
from bench.ledger_load import one_process, shared_file
from bench.processes import ROOT, peak_rss_kib
from bench.sessions import Call, Samples, Session, cold_start, interleave, open_session
from bench.stats import exponent, ratio, rotations, summarize
from bench.turns import take_turns
from bench.wire import stdio_peer
from bench.workspace import LLM_CALLS, READS, Workspace, document_name

__all__ = [
    "cold_starts", "doc_growth", "ledger_appends", "ledger_growth", "ledger_report", "llm_overhead", "read_latency",
]  # fmt: skip


def _summaries(samples: Samples) -> dict[str, Any]:
    return {name: summarize(times).as_dict() for name, times in samples.times_ms.items()}


async def _sessions(stack: AsyncExitStack, launches: list[Any], errlog: TextIO) -> list[Session]:
    return [await open_session(stack, launch, errlog) for launch in launches]


async def cold_starts(ws: Workspace, runs: int, errlog: TextIO) -> dict[str, Any]:
    """Spawn to first answered tools/list, planner-mcp and the bare floor taking turns."""
    launches = {"planner": ws.planner("planner", "cold-ledger"), "bare": ws.bare()}
    times: dict[str, list[float]] = {name: [] for name in launches}
    for order in rotations(list(launches), runs * len(launches)):
        name = order[0]
        times[name].append(await cold_start(launches[name], errlog) * 1000)
    result: dict[str, Any] = {name: summarize(t).as_dict() for name, t in times.items()}
    result["ratio_p50_to_bare"] = ratio(result["planner"]["p50"], result["bare"]["p50"])
    return result


async def read_latency(ws: Workspace, calls: int, batch: int, errlog: TextIO) -> dict[str, Any]:
    """Round trips of the read tools with the fast client (`bench.wire`), one call at a time, on planner-mcp (ledger
    at synchronous=FULL) and the floors, taking turns; then the peak RSS of each server process over all those
    calls. Judged against the strict floor; the sdk, bare, durable and intent floors are reported beside it."""
    return await anyio.to_thread.run_sync(_read_latency, ws, calls, batch, errlog)


def _read_latency(ws: Workspace, calls: int, batch: int, errlog: TextIO) -> dict[str, Any]:
    launches = [ws.planner("planner", "reads-ledger"), ws.strict(), ws.sdk()]
    launches += [ws.bare(), ws.durable(), ws.intent_floor()]
    result: dict[str, Any] = {}
    with ExitStack() as stack:
        peers = [stack.enter_context(stdio_peer(launch, errlog)) for launch in launches]
        for tool, call in READS.items():
            figures: dict[str, Any] = take_turns(peers, call, calls=calls, batch=batch)
            result[tool] = {**figures, **_read_ratios(figures)}
        rss = {peer.name: peak_rss_kib(peer.pid) for peer in peers}
    memory = {"peak_rss_kib": rss, "ratio_to_bare": ratio(rss["planner"], rss["bare"])}
    return {"read_tools": result, "memory": memory}


def _read_ratios(figures: dict[str, Any]) -> dict[str, float]:
    """planner-mcp against each floor; and the fast client's own CPU per call against the sdk floor's p50, which
    shows how little of a round trip is the client's."""
    planner, strict, sdk = figures["planner"], figures["strict"], figures["sdk"]
    return {
        "ratio_p50_to_strict": ratio(planner["p50"], strict["p50"]),
        "ratio_p95_to_strict": ratio(planner["p95"], strict["p95"]),
        "ratio_server_cpu_to_strict": ratio(planner["server_cpu_ms"], strict["server_cpu_ms"]),
        "ratio_p50_to_sdk": ratio(planner["p50"], sdk["p50"]),
        "ratio_p50_to_bare": ratio(planner["p50"], figures["bare"]["p50"]),
        "ratio_p50_to_durable": ratio(planner["p50"], figures["durable"]["p50"]),
        "ratio_p50_to_intent_floor": ratio(planner["p50"], figures["intent"]["p50"]),
        "ratio_p50_intent_floor_to_durable": ratio(figures["intent"]["p50"], figures["durable"]["p50"]),
        "client_cpu_share_of_sdk_p50": ratio(sdk["client_cpu_ms"], sdk["p50"]),
    }


async def llm_overhead(ws: Workspace, calls: int, batch: int, delay_ms: float, errlog: TextIO) -> dict[str, Any]:
    """The LLM tools against the fixed-delay peer: time above the delay, planner-mcp and a bare server that
    makes the same request with the same SDK."""
    result: dict[str, Any] = {"delay_ms": delay_ms}
    async with AsyncExitStack() as stack:
        sessions = await _sessions(stack, [ws.planner("planner", "llm-ledger"), ws.bare()], errlog)
        for tool, call in LLM_CALLS.items():
            samples = await interleave(sessions, [call], rounds=max(1, calls // batch), batch=batch, warmup=5)
            figures = _summaries(samples)
            figures["overhead_p50_ms"] = round(figures["planner"]["p50"] - delay_ms, 3)
            figures["overhead_p95_ms"] = round(figures["planner"]["p95"] - delay_ms, 3)
            figures["bare_overhead_p50_ms"] = round(figures["bare"]["p50"] - delay_ms, 3)
            # What planner-mcp adds to the same request: the client's round trip over stdio and the openai SDK
            # cost the bare floor as much as they cost us, so they are not governance's to answer for.
            figures["overhead_vs_bare_p50_ms"] = round(figures["planner"]["p50"] - figures["bare"]["p50"], 3)
            result[tool] = figures
    return result


def ledger_appends(root: Path, calls: int, processes: int, calls_each: int) -> dict[str, Any]:
    return {
        "one_process": one_process(root / "appends-one" / "ledger.db", calls),
        "shared": shared_file(root / "appends-shared" / "ledger.db", processes, calls_each),
    }


async def ledger_growth(
    ws: Workspace, sizes: tuple[int, ...], calls: int, batch: int, cache: Path, errlog: TextIO
) -> dict[str, Any]:
    """read_docs on planner-mcp with the ledger already holding each number of rows, interleaved."""
    launches = [
        ws.planner(str(rows), cached_ledger(rows, cache, ws.root / f"growth-{rows}" / "ledger.db")) for rows in sizes
    ]
    async with AsyncExitStack() as stack:
        sessions = await _sessions(stack, launches, errlog)
        samples = await interleave(sessions, [READS["read_docs"]], rounds=max(1, calls // batch), batch=batch)
    figures = _summaries(samples)
    p50 = [figures[str(rows)]["p50"] for rows in sizes]
    return {
        "rows": figures,
        "ratio_p50_largest_to_smallest": ratio(p50[-1], p50[0]),
        "exponent": exponent(sizes, p50),
    }


async def doc_growth(ws: Workspace, sizes: tuple[int, ...], calls: int, batch: int, errlog: TextIO) -> dict[str, Any]:
    """read_docs of documents of each size, planner-mcp and the bare floor interleaved."""
    result: dict[str, Any] = {}
    async with AsyncExitStack() as stack:
        sessions = await _sessions(stack, [ws.planner("planner", "docs-ledger"), ws.bare()], errlog)
        for size in sizes:
            call = Call("read_docs", {"name": document_name(size)})
            samples = await interleave(sessions, [call], rounds=max(1, calls // batch), batch=batch, warmup=3)
            figures = _summaries(samples)
            figures["ratio_p50_to_bare"] = ratio(figures["planner"]["p50"], figures["bare"]["p50"])
            result[str(size)] = figures
    p50 = [result[str(size)]["planner"]["p50"] for size in sizes]
    return {"bytes": result, "exponent": exponent(sizes, p50)}


def ledger_report(root: Path, rows: int, cache: Path) -> dict[str, Any]:
    """`planner-mcp ledger report --html` on a ledger of `rows` rows (a year of eight agents' calls of every kind,
    see `bench.fill`), end to end in its own process, and beside it the `verify` it begins with, alone, in this
    one: how much of the report is checking the chain."""
    from ledger import verify

    ledger = cached_ledger(rows, cache, root / "report" / "ledger.db", varied=True)
    page = root / "report" / "report.html"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root), "PLANNER_MCP_LEDGER": str(ledger),
           "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "server", "ledger", "report", "--html", str(page)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"ledger report exited {done.returncode}: {done.stderr[-2000:]}")
    started = time.perf_counter()
    status = verify(ledger).status
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "verify_seconds": round(time.perf_counter() - started, 2),
        "verify": status,
        "page_bytes": page.stat().st_size,
    }
