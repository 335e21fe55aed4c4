"""Several processes on one ledger file, and processes killed mid-call: the chain stays whole, no answer is lost."""

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from ledger import Intent, Ledger, Outcome, verify
from tests.conftest import rows
from tests.processes import server_process

pytestmark = pytest.mark.subprocess

_WRITER = textwrap.dedent(
    """
    import itertools, sys
    from pathlib import Path
    from ledger import Intent, Ledger, Outcome
    ledger = Ledger(Path(sys.argv[1]), busy_timeout_s=30)
    count = int(sys.argv[3])
    for i in range(count) if count else itertools.count():
        call = dict(request_id=f"{sys.argv[2]}-{i}", timestamp="t", agent_id="llm-planner-001",
                    agent_version="0.1.0", tier=0, action="read_docs", arguments={"i": i}, tools_digest="d")
        intent = ledger.record_intent(Intent(**call))
        ledger.record_outcome(Outcome(**call, decision="EXECUTE", confidence=1.0, success=True, intent_id=intent.id))
        print(call["request_id"], flush=True)  # the acknowledgement: the outcome is committed
    ledger.close()
    """
)


def _writer(path: Path, name: str, calls: int) -> "subprocess.Popen[str]":
    """A process recording `calls` calls (0: until killed), printing each request id once its outcome is in."""
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), name, str(calls)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _complete_lines(text: str) -> list[str]:
    """The lines a killed process finished writing: a last line without its newline was cut short."""
    return text.split("\n")[:-1]


def _assert_answered_calls_are_recorded(path: Path, answered: set[str]) -> None:
    """Status ok or incomplete, every answered call has its outcome, and only unanswered calls are incomplete."""
    report = verify(path)
    assert report.status in ("ok", "incomplete"), [str(f) for f in report.findings]
    intents = {r["id"]: r for r in rows(path, "call_intents")}
    outcomes = {r["request_id"]: r for r in rows(path)}
    assert answered <= set(outcomes), f"answered calls without an outcome: {sorted(answered - set(outcomes))}"
    for request_id in answered:
        assert intents[outcomes[request_id]["intent_id"]]["request_id"] == request_id
    by_seq = {r["seq"]: r["request_id"] for r in intents.values()}
    incomplete = [by_seq[f.seq] for f in report.findings if f.kind == "incomplete" and f.seq is not None]
    assert len(incomplete) == len([f for f in report.findings if f.kind == "incomplete"])
    assert not answered & set(incomplete), f"answered calls reported incomplete: {sorted(answered & set(incomplete))}"
    assert set(incomplete) == {r["request_id"] for r in intents.values()} - set(outcomes)


def test_several_processes_append_one_unbroken_chain(ledger_path: Path) -> None:
    writers, per_writer = 4, 150
    procs = [_writer(ledger_path, f"w{n}", per_writer) for n in range(writers)]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * writers, [err for _, err in outputs]
    expected = {f"w{n}-{i}" for n in range(writers) for i in range(per_writer)}
    assert sorted(line for out, _ in outputs for line in _complete_lines(out)) == sorted(expected)

    report = verify(ledger_path)
    assert report.status == "ok", [str(f) for f in report.findings]
    intents, outcomes = rows(ledger_path, "call_intents"), rows(ledger_path)
    events = rows(ledger_path, "ledger_events")
    assert len(intents) == len(outcomes) == writers * per_writer
    seqs = sorted(r["seq"] for r in [*intents, *outcomes, *events])
    assert seqs == list(range(1, len(seqs) + 1)) and report.head_seq == report.rows == len(seqs)
    assert sorted(r["request_id"] for r in intents) == sorted(expected)
    assert sorted(r["request_id"] for r in outcomes) == sorted(expected)
    by_id = {r["id"]: r for r in intents}
    for outcome in outcomes:
        intent = by_id[outcome["intent_id"]]
        assert intent["request_id"] == outcome["request_id"] and intent["seq"] < outcome["seq"]
    [metrics] = rows(ledger_path, "agent_metrics", order="agent_id")
    assert metrics["total_runs"] == writers * per_writer


def test_writers_killed_at_random_moments_lose_no_acknowledged_call(ledger_path: Path) -> None:
    seed = int(os.environ.get("LEDGER_KILL_SEED", random.randrange(2**32)))
    print(f"LEDGER_KILL_SEED={seed}")  # shown by pytest when the test fails: rerun with it to replay the schedule
    rng = random.Random(seed)
    rounds, writers = 6, 3
    acknowledged: set[str] = set()
    for round_ in range(rounds):
        procs = [_writer(ledger_path, f"r{round_}w{n}", 0) for n in range(writers)]
        started = time.monotonic()
        for at, proc in sorted(((rng.uniform(0.05, 0.6), p) for p in procs), key=lambda pair: pair[0]):
            time.sleep(max(0.0, started + at - time.monotonic()))
            proc.send_signal(signal.SIGKILL)
        for proc in procs:
            out, err = proc.communicate(timeout=30)
            # Killed, not dead of its own error: a writer that failed on the ledger the others left is a bug.
            assert proc.returncode == -signal.SIGKILL, f"seed {seed}: writer exited {proc.returncode}: {err}"
            acknowledged.update(_complete_lines(out))
        # Check after every round, so a failure names the round whose kills broke the ledger.
        report = verify(ledger_path) if ledger_path.exists() else None
        assert report is None or report.status != "tampered", (seed, round_, [str(f) for f in report.findings])

    assert acknowledged, f"seed {seed}: no writer acknowledged a call before its kill; the test proved nothing"
    _assert_answered_calls_are_recorded(ledger_path, acknowledged)
    # At most one call per killed writer can be caught between its intent and its outcome.
    assert len([f for f in verify(ledger_path).findings if f.kind == "incomplete"]) <= rounds * writers

    ledger = Ledger(ledger_path)
    call: dict[str, Any] = {
        "request_id": "after", "timestamp": "t", "agent_id": "llm-planner-001", "agent_version": "0.1.0",
        "tier": 0, "action": "read_docs", "arguments": {}, "tools_digest": "d",
    }  # fmt: skip
    intent = ledger.record_intent(Intent(**call))
    ledger.record_outcome(Outcome(**call, decision="EXECUTE", confidence=1.0, success=True, intent_id=intent.id))
    ledger.close()
    _assert_answered_calls_are_recorded(ledger_path, acknowledged | {"after"})


class _RawHost:
    """A host speaking newline-delimited JSON-RPC to `planner-mcp serve`, keeping every reply it has read."""

    def __init__(self, proc: "subprocess.Popen[str]") -> None:
        self.proc = proc
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        self.replies: dict[int, dict[str, Any]] = {}

    def send(self, *messages: dict[str, Any]) -> None:
        self.stdin.write("".join(json.dumps({"jsonrpc": "2.0", **m}) + "\n" for m in messages))
        self.stdin.flush()

    def keep(self, line: str) -> None:
        message = json.loads(line)
        if "id" in message and ("result" in message or "error" in message):
            self.replies[message["id"]] = message

    def wait_for(self, message_id: int) -> None:
        while message_id not in self.replies:
            line = self.stdout.readline()
            assert line.endswith("\n"), f"the server closed stdout before answering {message_id}"
            self.keep(line)


def _tool_call(n: int) -> dict[str, Any]:
    name, arguments = ("read_docs", {"name": "backup-restore"}) if n % 2 else ("list_docs", {})
    return {"id": n, "method": "tools/call", "params": {"name": name, "arguments": arguments}}


def test_a_killed_stdio_server_leaves_every_answered_call_in_the_ledger(ledger_path: Path) -> None:
    # The watchdog bounds every read: a killed server closes its stdout.
    with server_process(ledger_path, "serve", stderr=subprocess.DEVNULL, text=True) as proc:
        host = _RawHost(proc)
        client = {"name": "kill-test", "version": "1"}
        host.send({"id": 0, "method": "initialize",
                   "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": client}})  # fmt: skip
        host.wait_for(0)
        host.send({"method": "notifications/initialized"})
        for n in range(1, 11):
            host.send(_tool_call(n))
            host.wait_for(n)
        # A burst still in flight when the server dies: whatever it answered before dying must be recorded.
        host.send(*(_tool_call(n) for n in range(11, 21)))
        while max(host.replies) <= 10:  # until the first of the burst is answered
            host.keep(host.stdout.readline())
        host.proc.send_signal(signal.SIGKILL)
        assert host.proc.wait(timeout=10) == -signal.SIGKILL
        for line in _complete_lines(host.stdout.read()):
            host.keep(line)

    assert "error" not in host.replies[0]
    calls = [host.replies[n] for n in sorted(host.replies) if n > 0]
    assert set(host.replies) <= set(range(21)) and len(calls) >= 11
    assert all(c["result"]["isError"] is False for c in calls), calls
    answered = {c["result"]["structuredContent"]["request_id"] for c in calls}
    assert len(answered) == len(calls)
    _assert_answered_calls_are_recorded(ledger_path, answered)
