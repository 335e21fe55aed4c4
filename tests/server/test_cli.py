"""The planner-mcp command, run as a user runs it."""

import json
import os
import pty
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEFAULT_TOOLS, rows
from tests.processes import run_cli, server_process

pytestmark = pytest.mark.subprocess


def test_tools_json_prints_the_registered_tools_with_their_annotations(ledger_path: Path) -> None:
    proc = run_cli(ledger_path, "tools", "--json")
    assert proc.returncode == 0, proc.stderr
    tools = json.loads(proc.stdout)
    assert [t["name"] for t in tools] == DEFAULT_TOOLS
    assert tools[0]["annotations"]["readOnlyHint"] is True and "outputSchema" in tools[0]


def test_call_runs_through_the_gate_and_the_ledger(ledger_path: Path) -> None:
    proc = run_cli(ledger_path, "call", "read_docs", '{"name": "node-maintenance"}')
    assert proc.returncode == 0, proc.stderr
    output = json.loads(proc.stdout)
    assert output["decision"] == "EXECUTE" and output["data"]["name"] == "node-maintenance"
    assert [r["request_id"] for r in rows(ledger_path)] == [output["request_id"]]
    assert len(rows(ledger_path, "call_intents")) == 1


def test_call_exits_1_on_an_error_decision_and_records_it(ledger_path: Path) -> None:
    proc = run_cli(ledger_path, "call", "ssh", '{"host": "pve01"}')
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["error"]["type"] == "FORBIDDEN_ACTION"
    assert rows(ledger_path)[0]["refused"] == 1


def test_call_refuses_arguments_that_are_not_a_json_object(ledger_path: Path) -> None:
    proc = run_cli(ledger_path, "call", "read_docs", "[1, 2]")
    assert proc.returncode == 2 and "JSON object" in proc.stderr and proc.stdout == ""


def test_ledger_tail_shows_the_recorded_calls(ledger_path: Path) -> None:
    run_cli(ledger_path, "call", "list_docs")
    run_cli(ledger_path, "call", "execute_shell")
    proc = run_cli(ledger_path, "ledger", "tail", "--json")
    assert proc.returncode == 0, proc.stderr
    tail = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["action"], r["decision"]) for r in tail] == [("list_docs", "EXECUTE"), ("execute_shell", "ERROR")]
    text = run_cli(ledger_path, "ledger", "tail", "-n", "1")
    assert "execute_shell" in text.stdout and "FORBIDDEN_ACTION" in text.stdout and "list_docs" not in text.stdout


def test_a_bad_policy_stops_start_up_with_a_message_that_names_it(ledger_path: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("tier = ", encoding="utf-8")
    proc = run_cli(ledger_path, "serve", PLANNER_MCP_POLICY=str(policy))
    assert proc.returncode == 2
    assert "policy.toml is not valid TOML" in proc.stderr and proc.stdout == ""


def test_a_bad_number_in_the_environment_names_the_variable(ledger_path: Path) -> None:
    proc = run_cli(ledger_path, "tools", PLANNER_MCP_LLM_TIMEOUT="soon")
    assert proc.returncode == 2 and "PLANNER_MCP_LLM_TIMEOUT" in proc.stderr


def test_ledger_tail_does_not_create_a_ledger_that_is_not_there(ledger_path: Path) -> None:
    proc = run_cli(ledger_path, "ledger", "tail")
    assert proc.returncode == 1 and "no ledger at" in proc.stderr
    assert not ledger_path.exists()


def test_serve_started_from_a_terminal_says_on_stderr_what_it_waits_for(ledger_path: Path) -> None:
    terminal, server_side = pty.openpty()
    with server_process(ledger_path, "serve", stdin=server_side, text=True) as proc:
        os.close(server_side)
        try:
            assert proc.stderr is not None and proc.stdout is not None
            hint = proc.stderr.readline()
        finally:
            proc.kill()
            os.close(terminal)
        stdout = proc.stdout.read()
    assert "waiting for a host's JSON-RPC messages on stdin" in hint and "mcp.json" in hint
    assert stdout == ""


def test_the_console_script_is_installed_beside_the_interpreter() -> None:
    script = Path(sys.executable).parent / "planner-mcp"
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("planner-mcp ")


def test_doctor_checks_the_file_store_and_names_the_fix(ledger_path: Path, tmp_path: Path) -> None:
    healthy = run_cli(ledger_path, "doctor")
    assert healthy.returncode == 0, healthy.stdout
    assert healthy.stdout.startswith("ok    config: settings from the environment")
    assert "ok    http: no HTTP callers configured" in healthy.stdout
    assert "ok    policy:" in healthy.stdout and "ok    store: file store" in healthy.stdout
    half_oauth = run_cli(ledger_path, "doctor", PLANNER_MCP_OAUTH_ISSUER="https://issuer.example")
    assert (
        half_oauth.returncode == 1
        and "FAIL  http:" in half_oauth.stdout
        and "PLANNER_MCP_OAUTH_JWKS_URL" in half_oauth.stdout
    )
    assert "WARN  llm:" in healthy.stdout and "PLANNER_MCP_MODEL" in healthy.stdout
    broken = run_cli(ledger_path, "doctor", PLANNER_MCP_DATA=str(tmp_path / "nowhere"))
    assert broken.returncode == 1
    assert "FAIL  store:" in broken.stdout and "PLANNER_MCP_DATA" in broken.stdout
    assert not ledger_path.exists()  # the doctor looks; it does not write


def test_doctor_fails_a_data_folder_the_store_would_refuse_to_read(ledger_path: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "inventory").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (data / "docs").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    linked = run_cli(ledger_path, "doctor", PLANNER_MCP_DATA=str(data))
    assert linked.returncode == 1
    assert "FAIL  store: docs/ under" in linked.stdout and "symbolic link" in linked.stdout


def test_doctor_checks_the_ledgers_chain_head_and_key(ledger_path: Path, tmp_path: Path) -> None:
    assert run_cli(ledger_path, "call", "list_docs").returncode == 0
    healthy = run_cli(ledger_path, "doctor")
    assert "ok    ledger: " in healthy.stdout and "chain head at seq 3 intact" in healthy.stdout
    assert "ledger.sqlite: SQLite" in healthy.stdout
    conn = sqlite3.connect(ledger_path)
    (trigger,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'agent_actions_no_update'").fetchone()
    conn.execute("DROP TRIGGER agent_actions_no_update")
    conn.execute("UPDATE agent_actions SET decision = 'ESCALATE'")
    conn.execute(trigger)  # put back, as a careful intruder would: the schema is as it was
    conn.commit()
    conn.close()
    altered = run_cli(ledger_path, "doctor")
    assert altered.returncode == 1
    assert "FAIL  ledger:" in altered.stdout and "does not match its hash" in altered.stdout
    assert "ledger verify" in altered.stdout
    short_key = tmp_path / "key"
    short_key.write_text("too short")
    keyless = run_cli(ledger_path, "doctor", PLANNER_MCP_LEDGER_KEY_FILE=str(short_key))
    assert "FAIL  ledger.key:" in keyless.stdout and "shorter than 32" in keyless.stdout


def test_json_logs_are_one_object_a_line_on_stderr_with_the_calls_fields(ledger_path: Path) -> None:
    proc = run_cli(ledger_path, "--log-level", "INFO", "--log-format", "json", "call", "list_docs")
    assert proc.returncode == 0, proc.stderr
    output = json.loads(proc.stdout)  # stdout carries only the result
    entries = [json.loads(line) for line in proc.stderr.splitlines()]
    [call] = [e for e in entries if e.get("request_id")]
    assert (call["logger"], call["level"], call["action"], call["decision"]) == (
        "server.gate",
        "INFO",
        "list_docs",
        "EXECUTE",
    )
    assert call["request_id"] == output["request_id"] and call["duration_ms"] > 0 and call["ts"].endswith("Z")


_TRACEBACK = """
import logging
from server.support.logs import configure
configure("INFO", "text")
try:
    raise ValueError("no entry named 'x\\n2026-01-01 00:00:00,000 ERROR server.gate: forged'")
except ValueError:
    logging.getLogger("server.test").exception("Reading %s failed", "x\\u2028y")
"""


def test_a_text_log_line_and_its_traceback_cannot_be_made_to_start_a_line_by_a_value() -> None:
    proc = subprocess.run([sys.executable, "-c", _TRACEBACK], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    first, *traceback = proc.stderr.splitlines()  # at every line break Unicode knows
    assert first.endswith(" ERROR server.test: Reading x\\u2028y failed")
    # Only the record's first line starts at the margin: every line of the traceback, its message's too, is indented.
    assert traceback and all(line.startswith("    ") for line in traceback), proc.stderr
    assert "    2026-01-01 00:00:00,000 ERROR server.gate: forged'" in traceback  # the message's own line, indented
