"""The harness measures what it says: the floors answer like planner-mcp, the clocks stop where they should,
the processes measured are the servers, and the ledger figures count rows that are really there.

No figure is compared with a limit here (machines are noisy); only what the harness does is checked.
"""

import importlib.util
import json
import sqlite3
import subprocess
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TextIO

import anyio
import pytest
from mcp import StdioServerParameters

from bench.fill import cached_ledger, fill
from bench.ledger_load import shared_file
from bench.processes import ROOT, Launch
from bench.sessions import Call, CallFailed, cold_start, interleave, open_session
from bench.telemetry import telemetry_cost
from bench.workspace import LLM_CALLS, READS, Workspace, capture_fixture
from ledger import verify
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.peers.plans import A_PLAN, AN_ANALYSIS

pytestmark = [pytest.mark.anyio, pytest.mark.subprocess]


def _shape(value: Any) -> Any:
    """The keys and types of a JSON value, all the way down, without its values."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value[:1]]
    return type(value).__name__


async def test_the_floors_show_the_same_tools_and_answer_with_payloads_of_the_same_shape_and_size(
    workspace: Workspace, errlog: TextIO
) -> None:
    calls = [*READS.values(), *LLM_CALLS.values(), Call("read_docs", {"name": "bench-10240b"})]
    with anyio.fail_after(120):
        async with AsyncExitStack() as stack:
            servers = [
                await open_session(stack, launch, errlog)
                for launch in (
                    workspace.planner("planner", "ledger"),
                    workspace.bare(),
                    workspace.durable(),
                    workspace.intent_floor(),
                )
            ]
            listed = [(await s.client.list_tools()).tools for s in servers]
            answers = [[(await s.call(call)).structured_content for call in calls] for s in servers]
    assert listed[0] == listed[1] == listed[2] == listed[3]
    planner, bare, *audited = answers
    for ours, theirs, *audited_theirs in zip(planner, bare, *audited, strict=True):
        assert ours is not None and theirs is not None and None not in audited_theirs
        assert _shape(theirs) == _shape(ours) == _shape(audited_theirs[0]) == _shape(audited_theirs[1])
        size = len(json.dumps(ours))
        assert abs(len(json.dumps(theirs)) - size) < 0.05 * size
        assert theirs["request_id"] != ours["request_id"]
    # The document is read on every call, not replayed from the fixture.
    assert bare[-1]["data"]["content"] == (workspace.data / "docs" / "bench-10240b.md").read_text(encoding="utf-8")
    assert len(bare[-1]["data"]["content"]) == 10_240
    with sqlite3.connect(workspace.root / "durable-floor.db") as conn:
        assert conn.execute("SELECT count(*) FROM calls").fetchone()[0] == len(calls)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # The intent floor commits both rows of each read tool's call, and only the durable floor's row otherwise.
    reads = sum(call.tool.startswith("read_") for call in calls)
    with sqlite3.connect(workspace.root / "intent-floor.db") as conn:
        assert conn.execute("SELECT count(*) FROM calls").fetchone()[0] == len(calls)
        assert conn.execute("SELECT count(*) FROM intents").fetchone()[0] == reads > 0


async def test_the_intent_floor_commits_the_intent_before_it_reads(workspace: Workspace, errlog: TextIO) -> None:
    with anyio.fail_after(60):
        async with AsyncExitStack() as stack:
            session = await open_session(stack, workspace.intent_floor(), errlog)
            await session.call(READS["read_docs"])
            with pytest.raises(CallFailed, match="read_docs failed"):
                await session.call(Call("read_docs", {"name": "no-such-runbook"}))
    # The read that failed left its intent, and no row of its own: the intent was in before the read.
    with sqlite3.connect(workspace.root / "intent-floor.db") as conn:
        intents = [json.loads(a)["name"] for (a,) in conn.execute("SELECT arguments FROM intents ORDER BY id")]
        assert intents == ["backup-restore", "no-such-runbook"]
        assert conn.execute("SELECT count(*) FROM calls").fetchone()[0] == 1


async def test_the_llm_tools_are_timed_on_a_reply_they_can_use_not_on_their_fallback(
    workspace: Workspace, tmp_path: Path, errlog: TextIO
) -> None:
    payloads = json.loads(workspace.fixture.read_text(encoding="utf-8"))["payloads"]
    assert payloads["analyze"]["llm_response"] == AN_ANALYSIS["analysis"]
    assert payloads["generate_plan"]["plan"]["title"] == A_PLAN["title"]
    # A peer whose replies do not parse would have the bench time the fallback path: it is refused.
    with (
        FakeOpenAI(default=Reply.text("no JSON here"), models=["bench-model"]) as garbled,
        pytest.raises(RuntimeError, match="could not use the LLM peer's reply to analyze"),
    ):
        await capture_fixture(tmp_path / "garbled", workspace.data, garbled.base_url, errlog)


async def test_a_cold_start_lasts_until_the_first_tools_list_is_answered(workspace: Workspace, errlog: TextIO) -> None:
    # The floor, started only after half a second: a clock that stopped at the spawn would not see it.
    slow = StdioServerParameters(
        command=sys.executable,
        args=[
            "-c",
            "import sys, time, runpy; time.sleep(0.5); sys.argv[1:] = sys.argv[1:]; "
            "runpy.run_module('bench.floor_server', run_name='__main__')",
            str(workspace.fixture),
            str(workspace.data),
        ],
        cwd=ROOT,
    )
    assert await cold_start(Launch("slow", slow), errlog) >= 0.5
    assert await cold_start(workspace.bare(), errlog) > 0


async def test_interleaving_counts_every_timed_call_and_refuses_to_time_a_failed_one(
    workspace: Workspace, errlog: TextIO
) -> None:
    async with AsyncExitStack() as stack:
        planner = await open_session(stack, workspace.planner("planner", "ledger"), errlog)
        bare = await open_session(stack, workspace.bare(), errlog)
        samples = await interleave([planner, bare], [READS["read_docs"]], rounds=3, batch=4, warmup=2)
        assert {name: len(times) for name, times in samples.times_ms.items()} == {"planner": 12, "bare": 12}
        assert all(t > 0 for times in samples.times_ms.values() for t in times)
        assert samples.payload_bytes["planner"] > 1_000
        with pytest.raises(CallFailed, match="NOT_FOUND"):
            await interleave([planner], [Call("read_docs", {"name": "no-such-runbook"})], rounds=1, batch=1)
    # Warm-up and timed calls all went through the gate: 2 + 12 recorded, and the refused one.
    with sqlite3.connect(workspace.root / "ledger" / "ledger.db") as conn:
        assert conn.execute("SELECT count(*) FROM agent_actions").fetchone()[0] == 15


async def test_memory_is_read_from_the_server_process_itself(workspace: Workspace, errlog: TextIO) -> None:
    async with AsyncExitStack() as stack:
        planner = await open_session(stack, workspace.planner("planner", "ledger"), errlog)
        bare = await open_session(stack, workspace.bare(), errlog)
        commands = {s.name: Path(f"/proc/{s.pid}/cmdline").read_bytes().split(b"\0") for s in (planner, bare)}
        rss = {s.name: s.peak_rss_kib() for s in (planner, bare)}
    assert b"server" in commands["planner"] and b"serve" in commands["planner"]
    assert b"bench.floor_server" in commands["bare"]
    assert all(kib > 20_000 for kib in rss.values())  # a Python process with mcp loaded, not this test's shell


def test_a_filled_ledger_holds_the_rows_asked_for_and_verifies(tmp_path: Path) -> None:
    path = tmp_path / "filled.db"
    fill(path, 1_001)
    report = verify(path)
    assert report.status == "ok", report.findings
    with sqlite3.connect(path) as conn:
        calls = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("call_intents", "agent_actions"))
        events = conn.execute("SELECT count(*) FROM ledger_events WHERE kind = 'bench'").fetchone()[0]
    assert (calls, events) == (1_000, 1)
    # Cached: the second copy comes from the first fill, and is a copy (the cache is never written to).
    first = cached_ledger(200, tmp_path / "cache", tmp_path / "a" / "ledger.db")
    second = cached_ledger(200, tmp_path / "cache", tmp_path / "b" / "ledger.db")
    assert first.read_bytes() == second.read_bytes()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [
        p.name for p in (tmp_path / "cache").glob("ledger-200-*.db")
    ]


def test_a_varied_ledger_holds_a_year_of_every_kind_of_call_and_verifies(tmp_path: Path) -> None:
    path = tmp_path / "varied.db"
    fill(path, 2_000, varied=True)
    assert verify(path).status == "ok"
    with sqlite3.connect(path) as conn:
        decisions = {d for (d,) in conn.execute("SELECT DISTINCT decision FROM agent_actions")}
        (days, agents, spent) = conn.execute(
            "SELECT count(DISTINCT substr(timestamp, 1, 10)), count(DISTINCT agent_id), sum(prompt_tokens)"
            " FROM agent_actions"
        ).fetchone()
    assert decisions == {"EXECUTE", "ESCALATE", "INSUFFICIENT_INFORMATION", "SKIP", "ERROR"}
    assert (days, agents) == (365, 8) and spent > 0


def test_the_shared_file_figure_counts_rows_really_written_and_verifies_them(tmp_path: Path) -> None:
    result = shared_file(tmp_path / "ledger.db", processes=2, calls=20)
    assert (result["appends"], result["rows_written"], result["lost"]) == (80, 80, 0)
    assert result["verify"] == "ok" and result["per_second"] > 0


def test_the_quick_run_measures_every_target_and_writes_table_and_json(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    # The servers never write bytecode, so a module the harness did not compile would be compiled at every start.
    bytecode = Path(importlib.util.cache_from_source(str(ROOT / "server" / "governance" / "gate.py")))
    bytecode.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out), "--cache", str(tmp_path / "cache")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr  # 1: a target missed, which a quick run may well do
    results = json.loads(out.read_text(encoding="utf-8"))
    assert all(t["measured"] for t in results["targets"]), results["targets"]
    assert results["ledger"]["shared"]["lost"] == 0
    assert set(results["read_tools"]) == {"read_docs", "read_inventory"}
    assert {"planner", "bare", "durable", "intent"} <= set(results["read_tools"]["read_docs"])
    assert "planner vs intent floor" in done.stdout
    # Issue 27: the reads by the fast client against the strict floor, and throughput on both transports.
    assert {"strict", "sdk"} <= set(results["read_tools"]["read_docs"])
    assert results["read_tools"]["read_inventory"]["planner"]["server_cpu_ms"] > 0
    for transport in ("stdio", "http"):
        assert set(results["throughput"][transport]) == {"1", "8", "32"}
        assert results["throughput"][transport]["32"]["strict"]["max_in_flight"] == 32
    assert "read_inventory http, 8 in flight" in done.stdout
    assert "cold start, p50 vs bare" in done.stdout and "figures:" in done.stdout
    assert results["report"]["verify"] == "ok" and "ledger report of 3,000 rows" in done.stdout
    assert bytecode.exists()


def test_an_unknown_section_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "reads,nonsense"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 2 and "nonsense" in done.stderr


async def test_the_telemetry_section_times_servers_whose_telemetry_really_ran(
    workspace: Workspace, errlog: TextIO
) -> None:
    """Each server with telemetry on is proven on (its scrape counted calls, its exports reached the sink) before
    its figures are kept; each gets its ratio to the same server with telemetry off."""
    with anyio.fail_after(300):
        result = await telemetry_cost(workspace, calls=20, batch=10, cold_runs=1, errlog=errlog)
    servers = {"off", "prometheus", "otel", "both"} if result["otel"] == "measured" else {"off", "prometheus"}
    for figures in (*result["read_tools"].values(), result["cold_start"]):
        assert {name for name in figures if not name.startswith("ratio_")} == servers
        assert {name for name in figures if name.startswith("ratio_")} == {
            f"ratio_p50_{name}_to_off" for name in servers - {"off"}
        }
    assert (result["otlp_exports"] > 0) == (result["otel"] == "measured")
