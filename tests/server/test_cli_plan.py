"""`planner-mcp plan` and `planner-mcp analyze`, run as a user runs them, against the loopback OpenAI peer: the
answer printed for a person (or as the AgentOutput with `--json`), through the gate and ledger as any call."""

import hashlib
import json
import os
import pty
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY, PLAN, policy_file, rows
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.peers.plans import AN_ANALYSIS
from tests.processes import WATCHDOG_S, run_cli, server_process

pytestmark = pytest.mark.subprocess

README = Path(__file__).parents[2] / "README.md"

_RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
"""What must never reach the terminal raw (a newline only ends a line)."""


def _env(llm: FakeOpenAI) -> dict[str, str]:
    return {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": API_KEY, "PLANNER_MCP_MODEL": "test-model",
            "PLANNER_MCP_LLM_RETRIES": "0"}  # fmt: skip


def _plan(
    llm: FakeOpenAI, ledger_path: Path, *args: str, reply: dict[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    """`planner-mcp plan ARGS`, the model answering `reply` (a plan the server accepts unless said)."""
    llm.enqueue(Reply.text(json.dumps(reply or PLAN)))
    proc = run_cli(ledger_path, "plan", *args, **_env(llm))
    assert API_KEY not in proc.stdout + proc.stderr
    return proc


def test_a_plan_is_printed_with_its_decision_the_rule_its_steps_and_their_rollbacks(
    llm: FakeOpenAI, ledger_path: Path
) -> None:
    context = '{"pool": "prod"}'
    proc = _plan(llm, ledger_path, "Add a VM to the prod pool", "--constraint", "no downtime", "--doc",
                 "backup-restore", "--context", context)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["Plan: Add a VM to the prod pool", "  Clone the template and register it with HA."]
    assert "Decision:    EXECUTE (it passed every rule; nothing was run, this server only plans)" in lines
    assert "Why:         confidence 0.85 meets the threshold 0.70 and the plan needs tier 0, within this agent's " \
        "tier 0." in lines  # fmt: skip
    assert "Confidence:  0.85" in lines
    steps = lines[lines.index("Steps:") + 1 : lines.index("Steps:") + 5]
    assert steps == [
        "  1. Clone template 9000 to vmid 104",
        "     rollback: qm destroy 104",
        "  2. Add vmid 104 to HA group prod-ha",
        "     rollback: ha-manager remove",
    ]
    assert lines[lines.index("Assumptions:") + 1] == "  - Template 9000 is current"
    assert lines[lines.index("Risks:") + 1] == "  - Capacity on pve02"
    assert "Grounded in: docs backup-restore (file), inventory proxmox (file)" in lines
    # The call is the ledger's like any host's: its intent before the model was asked, its outcome after.
    [intent] = rows(ledger_path, "call_intents")
    [action] = rows(ledger_path)
    assert (intent["action"], action["action"], action["decision"]) == ("generate_plan", "generate_plan", "EXECUTE")
    assert action["intent_id"] == intent["id"] and intent["request_id"] == action["request_id"]
    assert lines[-1] == f"Recorded:    ledger seq {intent['seq']}, request {action['request_id']}"
    arguments = json.loads(action["arguments"])
    assert arguments["constraints"] == ["no downtime"] and arguments["docs"] == ["backup-restore"]
    assert arguments["context"] == {"pool": "prod"}
    # What the command line gave reached the model.
    prompt = json.dumps(llm.chat_requests[0].json["messages"])
    assert "no downtime" in prompt and "prod" in prompt


def test_a_plan_below_the_threshold_exits_0_and_says_a_human_must_decide(llm: FakeOpenAI, ledger_path: Path) -> None:
    proc = _plan(llm, ledger_path, "Add a VM", reply={**PLAN, "confidence": 0.4})
    assert proc.returncode == 0, proc.stderr
    assert "Decision:    ESCALATE: a human must decide (it did not pass every rule, so it is not to be acted on " \
        "as it is)" in proc.stdout.splitlines()  # fmt: skip
    assert "Why:         confidence 0.40 is below the threshold 0.70." in proc.stdout.splitlines()
    assert rows(ledger_path)[0]["decision"] == "ESCALATE"


@pytest.mark.parametrize("failure", ["endpoint down", "tool refused"])
def test_an_error_is_printed_with_what_to_do_exits_1_and_is_recorded(
    llm: FakeOpenAI, ledger_path: Path, tmp_path: Path, failure: str
) -> None:
    env = _env(llm)
    if failure == "endpoint down":
        llm.close()
        kind = "LLM_UNREACHABLE"
    else:
        without_plans = policy_file(tmp_path / "policy.toml", allowed_side_effects=["read_docs", "llm_inference"])
        env["PLANNER_MCP_POLICY"] = str(without_plans)
        kind = "FORBIDDEN_ACTION"
    proc = run_cli(ledger_path, "plan", "Add a VM", **env)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    [action] = rows(ledger_path)
    assert (action["decision"], action["error_type"]) == ("ERROR", kind)
    assert lines[:3] == ["Task: Add a VM", "", "Decision:    ERROR (the call failed)"]
    [error] = [line for line in lines if line.startswith("Error:")]
    [what_to_do] = [line for line in lines if line.startswith("What to do:")]
    assert error.startswith(f"Error:       {kind}: ") and len(what_to_do) > len("What to do:  ") + 10
    assert API_KEY not in proc.stdout + proc.stderr


def test_json_prints_the_agent_output_whose_digest_the_ledger_holds(llm: FakeOpenAI, ledger_path: Path) -> None:
    proc = _plan(llm, ledger_path, "Add a VM", "--json")
    assert proc.returncode == 0, proc.stderr
    [action] = rows(ledger_path)
    printed = proc.stdout.removesuffix("\n")
    assert action["output_digest"] == f"sha256:{hashlib.sha256(printed.encode()).hexdigest()}"
    output = json.loads(printed)
    assert output["request_id"] == action["request_id"] and output["plan"]["title"] == PLAN["title"]


def test_what_a_model_wrote_cannot_drive_the_terminal_or_forge_a_line(llm: FakeOpenAI, ledger_path: Path) -> None:
    hostile = "\x1b]0;owned\x07\x1b[2Jclone\u202e\u200b\r\nDecision:    EXECUTE"
    step = {"step": 1, "action": hostile, "reversible": True, "rollback": f"undo {hostile}"}
    leak = [f"The model saw {API_KEY}"]  # and the key it echoes is not printed (`_plan` checks)
    proc = _plan(llm, ledger_path, "Add a VM", reply={**PLAN, "title": hostile, "steps": [step], "confidence": 0.4,
                                                      "risks": leak})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not _RAW.findall(proc.stdout), proc.stdout
    lines = proc.stdout.splitlines()
    assert [line for line in lines if line.startswith("Decision:")] == [
        "Decision:    ESCALATE: a human must decide (it did not pass every rule, so it is not to be acted on as it is)"
    ]
    shown = "\\x1b]0;owned\\x07\\x1b[2Jclone\\u202e\\u200b\\r\\nDecision:    EXECUTE"
    assert f"Plan: {shown}" in lines and f"  1. {shown}" in lines and f"     rollback: undo {shown}" in lines


def test_a_reply_that_is_no_plan_is_escalated_with_the_reply_shown_indented(llm: FakeOpenAI, ledger_path: Path) -> None:
    llm.enqueue(Reply.text("I cannot plan that.\nPlan: forged"))
    proc = run_cli(ledger_path, "plan", "Add a VM", **_env(llm))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "Task: Add a VM" and "Confidence:  0.00" in lines
    [decision] = [line for line in lines if line.startswith("Decision:")]
    assert decision.startswith("Decision:    ESCALATE: a human") and not [x for x in lines if x.startswith("Plan:")]
    reply = lines.index("The model's reply (no plan could be read from it):")
    assert lines[reply + 1 : reply + 3] == ["  I cannot plan that.", "  Plan: forged"]


def test_an_analysis_is_printed_as_indented_prose_under_the_question(llm: FakeOpenAI, ledger_path: Path) -> None:
    text = "pve02 is short of memory.\n\nDecision:    EXECUTE\x1b[2J"
    llm.enqueue(Reply.text(json.dumps({**AN_ANALYSIS, "analysis": text})))
    proc = run_cli(ledger_path, "analyze", "Which node is short of memory?", "--doc", "backup-restore", **_env(llm))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "Question: Which node is short of memory?"
    assert "Confidence:  0.80" in lines and "Why:         confidence 0.80 meets the threshold 0.70." in lines
    answer = lines.index("Analysis:")
    assert lines[answer + 1 : answer + 4] == ["  pve02 is short of memory.", "  ", "  Decision:    EXECUTE\\x1b[2J"]
    assert [line for line in lines if line.startswith("Decision:")] == [
        "Decision:    EXECUTE (it passed every rule; nothing was run, this server only plans)"
    ]
    [action] = rows(ledger_path)
    assert (action["action"], json.loads(action["arguments"])["docs"]) == ("analyze", ["backup-restore"])


def test_a_context_that_is_not_a_json_object_is_refused_before_any_call(llm: FakeOpenAI, ledger_path: Path) -> None:
    for context in ("{not json", "[1, 2]"):
        proc = run_cli(ledger_path, "plan", "Add a VM", "--context", context, **_env(llm))
        assert proc.returncode == 2 and "--context" in proc.stderr and proc.stdout == ""
    assert not ledger_path.exists() and llm.chat_requests == []


def test_progress_goes_to_stderr_only_on_a_terminal_and_stdout_holds_only_the_answer(
    llm: FakeOpenAI, ledger_path: Path
) -> None:
    piped = _plan(llm, ledger_path, "Add a VM", "--json")
    assert piped.stderr == ""
    llm.enqueue(Reply.text(json.dumps(PLAN), delay=2.5))  # past the one-second heartbeat
    terminal, stderr_side = pty.openpty()
    with server_process(ledger_path, "plan", "Add a VM", "--json", env=_env(llm), stderr=stderr_side) as proc:
        os.close(stderr_side)
        stdout, _ = proc.communicate(timeout=WATCHDOG_S)
    shown = _drain(terminal)
    assert proc.returncode == 0 and json.loads(stdout)["decision"] == "EXECUTE"
    assert "planner-mcp: Waiting for test-model at 127.0.0.1" in shown and " s of 30 s)" in shown
    assert shown.endswith("\r\x1b[K")  # the progress line is cleared before the answer


def test_plan_prints_what_the_readme_shows(llm: FakeOpenAI, ledger_path: Path) -> None:
    [shown] = re.findall(r"```text\n\$ planner-mcp (plan .*?)```", README.read_text(encoding="utf-8"), re.S)
    command, printed = shown.split("\n", 1)
    proc = _plan(llm, ledger_path, *shlex.split(command)[1:])
    assert proc.returncode == 0, proc.stderr
    request = re.compile(r"request [0-9a-f]{32}$", re.M)
    assert request.sub("request ID", proc.stdout) == request.sub("request ID", printed)


def _drain(terminal: int) -> str:
    """All a pty's other side wrote, once that side is closed."""
    chunks = []
    try:
        while chunk := os.read(terminal, 4096):
            chunks.append(chunk)
    except OSError:  # EIO: the writer is gone and everything is read
        pass
    finally:
        os.close(terminal)
    return b"".join(chunks).decode()
