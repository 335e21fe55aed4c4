"""A server on stdio stops when asked: at SIGINT (Ctrl-C) or SIGTERM (a host giving up), with stdin still open.

It stops promptly, quietly and with exit status 0, and the call it was making is in the ledger as CANCELLED:
an outcome for its intent, and the upstream request abandoned.
"""

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY, rows
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.processes import HANDSHAKE, run_cli, server_process

pytestmark = pytest.mark.subprocess

_MESSAGES: list[dict[str, Any]] = [
    *HANDSHAKE,
    {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "analyze", "arguments": {"description": "Why is pve01 slow?"}},
    },
]
"""A host's handshake, then a call that waits on the LLM endpoint."""


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_a_stdio_server_at_once_and_its_call_in_flight_is_recorded_cancelled(
    ledger_path: Path, llm: FakeOpenAI, stop: signal.Signals
) -> None:
    llm.enqueue(Reply.hang(120))
    env = {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": API_KEY, "PLANNER_MCP_MODEL": "test-model"}
    with server_process(ledger_path, "serve", env=env, encoding="utf-8") as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.write("".join(json.dumps(m) + "\n" for m in _MESSAGES))
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["id"] == 1
        llm.wait_for_requests(1, timeout=30)  # the call waits on the endpoint, and stdin stays open
        proc.send_signal(stop)
        proc.send_signal(stop)  # an impatient second one finds the stop under way, and changes nothing
        proc.wait(timeout=30)  # not communicate(), which closes stdin: TimeoutExpired if the signal did nothing
        stderr = proc.stderr.read()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and stderr == "", stderr
    assert llm.wait_for_abandoned(1) == 1  # the upstream request was dropped, not left running
    [intent] = rows(ledger_path, "call_intents")
    [outcome] = rows(ledger_path)
    assert (outcome["request_id"], outcome["action"]) == (intent["request_id"], "analyze")
    assert (outcome["decision"], outcome["error_type"]) == ("ERROR", "CANCELLED")
    assert outcome["error_message"] == f"The server was stopped ({stop.name}) before the call finished."
    assert run_cli(ledger_path, "ledger", "verify").returncode == 0  # intact, and no call left without an outcome
