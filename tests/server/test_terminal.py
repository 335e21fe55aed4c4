"""The operator's terminal is not a channel: what the ledger commands print cannot drive it or forge a line.

A remote client names the tool it calls, and anyone who can write the ledger file can write any field; an
operator then reads both with `ledger tail` and `ledger stats`. Here a real call records a tool name, and a
crafted row an agent id, carrying what a terminal obeys: a window title (OSC 0), a screen clear, a colour, the
clipboard (OSC 52), a C1 control, a right-to-left override, a zero-width space and a newline forging a line.
"""

import json
import re
import sqlite3
from pathlib import Path

import anyio
import pytest

from server import Settings
from tests.conftest import API_KEY, call, connect
from tests.peers.openai_server import FakeOpenAI
from tests.processes import run_cli

pytestmark = pytest.mark.subprocess

_FORGED = "2026-01-01T00:00:00Z llm-planner-001 read_docs EXECUTE"
HOSTILE = f"\x1b]0;owned\x07\x1b[2J\x1b[31mred\x9b2J\u202eevil\u2066\u200bssh\x1b]52;c;cm0gLXJmIC8=\x07\r\n{_FORGED}"
"""Each kind of sequence a terminal acts on, ending in a whole forged line."""
_RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
"""What must never reach the terminal raw (a newline only ends a line, which the tests check by counting)."""


def _record_hostile(ledger_path: Path) -> None:
    """A real call naming a tool HOSTILE (refused and recorded), then its row's agent id crafted to HOSTILE too."""

    async def run() -> None:
        async with connect(Settings(ledger_path=ledger_path)) as client:
            await call(client, "read_docs", {"name": "backup-restore"})
            await call(client, HOSTILE, {})

    anyio.run(run)
    conn = sqlite3.connect(ledger_path, isolation_level=None)
    try:
        [trigger] = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'agent_actions_no_update'").fetchone()
        conn.execute("DROP TRIGGER agent_actions_no_update")
        conn.execute("UPDATE agent_actions SET agent_id = ? WHERE action = ?", (HOSTILE, HOSTILE))
        conn.execute(trigger)
    finally:
        conn.close()


def _printed(ledger_path: Path, *command: str, status: int = 0) -> str:
    proc = run_cli(ledger_path, "ledger", *command)
    assert proc.returncode == status, proc.stderr
    assert not _RAW.findall(proc.stdout), proc.stdout
    return proc.stdout


def test_tail_stats_and_verify_show_a_hostile_name_escaped_on_one_line(ledger_path: Path) -> None:
    _record_hostile(ledger_path)
    tail = _printed(ledger_path, "tail").splitlines()
    stats = _printed(ledger_path, "stats").splitlines()
    verify = _printed(ledger_path, "verify", status=1).splitlines()  # the crafted row is named, and quoted
    assert len(tail) == 2 and len(stats) == 3  # two rows; a header and two agents: no value began a line
    assert not [line for line in tail + stats + verify if line.startswith(_FORGED[:10])]
    assert verify[-1] == "TAMPERED" and [line for line in verify if line.startswith("  altered     seq 4")]
    shown = "\\x1b]0;owned\\x07\\x1b[2J\\x1b[31mred\\x9b2J\\u202eevil\\u2066\\u200bssh"
    assert tail[1].count(shown) == 3  # the crafted agent id, and the tool name as the action and in the error
    assert [line for line in stats if line.startswith(shown)]  # the crafted agent id
    assert f"\\x07\\r\\n{_FORGED}" in tail[1]


@pytest.mark.parametrize("command", [("tail", "--json"), ("export",), ("stats", "--json")])
def test_json_output_escapes_the_same_characters_and_decodes_to_the_values_recorded(
    ledger_path: Path, command: tuple[str, ...]
) -> None:
    _record_hostile(ledger_path)
    printed = _printed(ledger_path, *command)
    values = json.loads(printed) if command[0] == "stats" else [json.loads(line) for line in printed.splitlines()]
    assert [v.get("agent_id") for v in values].count(HOSTILE) == 1
    if command[0] != "stats":
        assert [v.get("action") for v in values].count(HOSTILE) == 1


def test_doctor_quotes_an_endpoints_model_names_escaped_on_their_own_line(ledger_path: Path) -> None:
    forged = "ok    llm.model: test-model is listed by the endpoint"
    with FakeOpenAI(models=[f"\x1b]0;owned\x07\x1b[2J\u202eledom\u2066\n{forged}"]) as llm:
        env = {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": API_KEY, "PLANNER_MCP_MODEL": "test-model"}
        proc = run_cli(ledger_path, "doctor", **env)
    assert proc.returncode == 1, proc.stdout  # the configured model is not listed
    assert not _RAW.findall(proc.stdout), proc.stdout
    [quoted] = [line for line in proc.stdout.splitlines() if line.startswith("FAIL  llm.model")]
    assert f"\\x1b]0;owned\\x07\\x1b[2J\\u202eledom\\u2066\\n{forged}" in quoted
    assert forged not in proc.stdout.replace(quoted, "")  # the forged line is only inside the quoted one
