"""`planner-mcp ledger verify|checkpoint|stats|export`, run as an operator or an auditor runs them."""

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from contracts import default_agent
from ledger import Intent, Ledger
from ledger.chain import GENESIS, TABLES
from server import Settings
from tests.conftest import call, connect, recount_metrics, rows
from tests.processes import run_cli

pytestmark = pytest.mark.subprocess

Call = tuple[str, dict[str, Any]]
DOCS: Call = ("read_docs", {"name": "backup-restore"})
LIST: Call = ("list_docs", {})
SSH: Call = ("ssh", {"host": "pve01"})


def _record(ledger_path: Path, *calls: Call, **settings: Any) -> list[dict[str, Any]]:
    """Make real calls through the gate in this process (faster than one `planner-mcp call` each)."""

    async def run() -> list[dict[str, Any]]:
        async with connect(Settings(ledger_path=ledger_path, **settings)) as client:
            return [(await call(client, tool, arguments))[1] for tool, arguments in calls]

    return anyio.run(run)


def _verify(ledger_path: Path, *args: str, **env: str) -> tuple[int, dict[str, Any]]:
    proc = run_cli(ledger_path, "ledger", "verify", "--json", *args, **env)
    report: dict[str, Any] = json.loads(proc.stdout)
    return proc.returncode, report


def _lines(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


@contextmanager
def _tamper(ledger_path: Path, *triggers: str) -> Iterator[sqlite3.Connection]:
    """Write the file directly with the named append-only triggers dropped, then put them back."""
    conn = sqlite3.connect(ledger_path, isolation_level=None)
    try:
        saved = [conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (t,)).fetchone()[0] for t in triggers]
        for trigger in triggers:
            conn.execute(f"DROP TRIGGER {trigger}")
        yield conn
        for sql in saved:
            conn.execute(sql)
    finally:
        conn.close()


def test_verify_reports_an_intact_ledger_written_by_real_calls(ledger_path: Path) -> None:
    assert run_cli(ledger_path, "call", "read_docs", '{"name": "backup-restore"}').returncode == 0
    assert run_cli(ledger_path, "call", "ssh", '{"host": "pve01"}').returncode == 1
    text = run_cli(ledger_path, "ledger", "verify")
    assert text.returncode == 0, text.stdout + text.stderr
    assert text.stdout.splitlines()[-1] == "OK"
    code, report = _verify(ledger_path)
    # A schema event, an intent and an outcome for read_docs, and the outcome of the refusal.
    assert (code, report["status"], report["rows"], report["head"]["seq"]) == (0, "ok", 4, 4)
    assert report["findings"] == [] and report["keyed_rows"] == 0
    assert report["head"]["hash"] == rows(ledger_path, order="seq")[-1]["row_hash"]
    assert f"head seq 4 {report['head']['hash']}" in text.stdout


def test_a_checkpoint_detects_newest_rows_deleted_that_the_chain_alone_cannot(
    ledger_path: Path, tmp_path: Path
) -> None:
    _record(ledger_path, DOCS, SSH)  # ends with a refusal: no intent is left behind when it is deleted
    proc = run_cli(ledger_path, "ledger", "checkpoint")
    [anchor] = _lines(proc)
    _, report = _verify(ledger_path)
    assert (anchor["seq"], anchor["hash"]) == (report["head"]["seq"], report["head"]["hash"])
    checkpoints = tmp_path / "checkpoints.jsonl"
    checkpoints.write_text(proc.stdout, encoding="utf-8")
    _record(ledger_path, LIST, DOCS)
    code, grown = _verify(ledger_path, "--checkpoint", str(checkpoints))
    assert (code, grown["status"], grown["findings"]) == (0, "ok", [])
    assert grown["head"]["seq"] > anchor["seq"]

    deletes = [f"{table}_no_delete" for table in TABLES]
    with _tamper(ledger_path, *deletes) as conn:
        for table in TABLES:
            conn.execute(f"DELETE FROM {table} WHERE seq > ?", (anchor["seq"] - 1,))
        recount_metrics(conn)  # and the counts that would give it away, as a careful intruder would
    assert run_cli(ledger_path, "ledger", "verify").returncode == 0  # what a chain cannot see by itself
    code, cut = _verify(ledger_path, "--checkpoint", str(checkpoints))
    assert (code, cut["status"], cut["head"]["seq"]) == (1, "tampered", anchor["seq"] - 1)
    assert [(f["kind"], f["seq"]) for f in cut["findings"]] == [("truncated", anchor["seq"])]
    text = run_cli(ledger_path, "ledger", "verify", "--checkpoint", str(checkpoints))
    assert text.returncode == 1 and "truncated" in text.stdout and "TAMPERED" in text.stdout


def test_a_changed_field_is_named_altered_with_its_seq(ledger_path: Path) -> None:
    _record(ledger_path, DOCS, SSH, LIST)
    [refusal] = [r for r in rows(ledger_path) if r["action"] == "ssh"]
    with _tamper(ledger_path, "agent_actions_no_update") as conn:
        conn.execute("UPDATE agent_actions SET decision = 'EXECUTE' WHERE id = ?", (refusal["id"],))
    code, report = _verify(ledger_path)
    assert (code, report["status"]) == (1, "tampered")
    assert [(f["kind"], f["seq"]) for f in report["findings"]] == [("altered", refusal["seq"])]
    text = run_cli(ledger_path, "ledger", "verify")
    assert text.returncode == 1
    assert ["altered", "seq", f"{refusal['seq']}:"] in [line.split()[:3] for line in text.stdout.splitlines()]


def test_an_intent_without_an_outcome_is_incomplete_not_tampered(ledger_path: Path) -> None:
    _record(ledger_path, DOCS)
    ledger = Ledger(ledger_path)
    try:
        position = ledger.record_intent(
            Intent(
                request_id="r-stopped",
                timestamp="2026-11-24T00:00:00.000Z",
                agent_id="llm-planner-001",
                agent_version="0.1.0",
                tier=0,
                action="generate_plan",
                arguments={"description": "a call the server never finished"},
                tools_digest="sha256:abc",
            )
        )
    finally:
        ledger.close()
    code, report = _verify(ledger_path)
    assert (code, report["status"]) == (3, "incomplete")
    [finding] = report["findings"]
    assert (finding["kind"], finding["seq"]) == ("incomplete", position.seq)
    assert "r-stopped" in finding["detail"] and "generate_plan" in finding["detail"]
    text = run_cli(ledger_path, "ledger", "verify")
    assert text.returncode == 3 and "incomplete" in text.stdout and text.stdout.splitlines()[-1] == "INCOMPLETE"


@pytest.mark.parametrize("command", ["verify", "checkpoint"])
def test_a_ledger_that_is_not_there_cannot_be_verified_and_is_not_created(ledger_path: Path, command: str) -> None:
    proc = run_cli(ledger_path, "ledger", command)
    assert proc.returncode == 4 and str(ledger_path) in proc.stderr and proc.stdout == ""
    assert not ledger_path.exists() and not ledger_path.parent.exists()


def test_stats_counts_runs_compliant_refused_and_errors_per_agent(ledger_path: Path, tmp_path: Path) -> None:
    _record(ledger_path, SSH, ("read_docs", {"name": "no-such-runbook"}), LIST, DOCS)
    other = default_agent().model_copy(update={"agent_id": "other-planner-002"})
    policy = tmp_path / "other.toml"
    policy.write_text(
        "\n".join(f"{k} = {json.dumps(v)}" for k, v in other.model_dump(mode="json", exclude_none=True).items()),
        encoding="utf-8",
    )
    _record(ledger_path, LIST, policy_path=policy)
    proc = run_cli(ledger_path, "ledger", "stats", "--json")
    assert proc.returncode == 0, proc.stderr
    counts = [
        (s["agent_id"], s["total_runs"], s["compliant_runs"], s["consecutive_compliant"], s["refused_runs"],
         s["error_runs"], s["current_tier"])
        for s in json.loads(proc.stdout)
    ]  # fmt: skip
    assert counts == [("llm-planner-001", 4, 2, 2, 1, 1, 0), ("other-planner-002", 1, 1, 1, 0, 0, 0)]
    text = run_cli(ledger_path, "ledger", "stats")
    assert text.returncode == 0, text.stderr
    header, *table = text.stdout.splitlines()
    assert header.split()[:7] == ["agent", "tier", "runs", "compliant", "consecutive", "refused", "errors"]
    assert [line.split()[:8] for line in table] == [
        ["llm-planner-001", "0", "4", "2", "2", "1", "1", "0"],
        ["other-planner-002", "0", "1", "1", "1", "0", "0", "0"],
    ]


def test_export_prints_every_chained_row_in_order_with_its_hashes(ledger_path: Path) -> None:
    _record(ledger_path, DOCS, SSH, LIST)
    exported = _lines(run_cli(ledger_path, "ledger", "export", "--format", "jsonl"))
    _, report = _verify(ledger_path)
    assert [r["seq"] for r in exported] == list(range(1, report["rows"] + 1))
    assert all(r["table"] in TABLES for r in exported)
    assert [r["prev_hash"] for r in exported] == [GENESIS, *(r["row_hash"] for r in exported[:-1])]
    assert exported[-1]["row_hash"] == report["head"]["hash"]
    assert {r["request_id"] for r in exported if r["table"] == "agent_actions"} == {
        r["request_id"] for r in rows(ledger_path)
    }
    later = _lines(run_cli(ledger_path, "ledger", "export", "--after-seq", "3"))
    assert later == exported[3:] and later[0]["seq"] == 4


def test_a_keyed_ledger_verifies_only_with_its_key(ledger_path: Path, tmp_path: Path) -> None:
    key = tmp_path / "ledger.key"
    key.write_text("0123456789abcdef" * 4 + "\n", encoding="utf-8")
    key.chmod(0o600)
    keyed = {"PLANNER_MCP_LEDGER_KEY_FILE": str(key)}
    assert run_cli(ledger_path, "call", "read_docs", '{"name": "backup-restore"}', **keyed).returncode == 0
    hashes = [r["row_hash"] for table in TABLES for r in rows(ledger_path, table)]
    assert len(hashes) == 3 and all(h.startswith("v1:hmac-sha256:") for h in hashes)
    code, report = _verify(ledger_path, **keyed)
    assert (code, report["status"], report["keyed_rows"], report["findings"]) == (0, "ok", 3, [])
    text = run_cli(ledger_path, "ledger", "verify")
    assert text.returncode == 4 and "unverified" in text.stdout and "PLANNER_MCP_LEDGER_KEY_FILE" in text.stdout


def test_a_key_file_shorter_than_32_bytes_stops_a_call_before_the_ledger_is_touched(
    ledger_path: Path, tmp_path: Path
) -> None:
    key = tmp_path / "short.key"
    key.write_text("0123456789abcdef\n", encoding="utf-8")
    proc = run_cli(ledger_path, "call", "list_docs", PLANNER_MCP_LEDGER_KEY_FILE=str(key))
    assert proc.returncode == 2 and proc.stdout == ""
    assert "PLANNER_MCP_LEDGER_KEY_FILE" in proc.stderr and "16 bytes" in proc.stderr
    assert not ledger_path.exists()


def test_no_checkpoint_vouches_for_keyed_rows_checked_without_their_key(ledger_path: Path, tmp_path: Path) -> None:
    key = tmp_path / "ledger.key"
    key.write_text("c" * 64)
    assert run_cli(ledger_path, "call", "list_docs", PLANNER_MCP_LEDGER_KEY_FILE=str(key)).returncode == 0
    keyless = run_cli(ledger_path, "ledger", "checkpoint")
    assert keyless.returncode == 4 and keyless.stdout == "" and "need the key" in keyless.stderr
    keyed = run_cli(ledger_path, "ledger", "checkpoint", PLANNER_MCP_LEDGER_KEY_FILE=str(key))
    assert keyed.returncode == 0 and '"seq": 3' in keyed.stdout
