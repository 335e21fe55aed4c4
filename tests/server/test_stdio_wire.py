"""stdin and stdout on the event loop: whole replies, however slowly the host reads; a signal stops the
server even while a reply waits on a full pipe; and the wire carries only protocol messages, whatever a handler
or its child prints or reads."""

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import rows
from tests.processes import HANDSHAKE, WATCHDOG_S, host_env, server_process

pytestmark = pytest.mark.subprocess

_SMALL_PIPE = 4096
"""A host's pipe shrunk to one page, so a 1 MB reply waits for the host some 250 times."""


def _big_document(data: Path) -> str:
    """A copy of the shipped data with a 1 MB runbook, its text not ASCII alone (a character can span two writes)."""
    shutil.copytree(Path(__file__).parents[2] / "server" / "data", data)
    text = "".join(f"Step {i}: vérifier le nœud pve{i % 7:02d} — ok\n" for i in range(22_000))
    (data / "docs" / "huge.md").write_text(text, encoding="utf-8")
    return text


def _call(request_id: int, name: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
            "params": {"name": "read_docs", "arguments": {"name": name}}}  # fmt: skip


def _send(proc: "subprocess.Popen[bytes]", messages: list[dict[str, Any]]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(b"".join(json.dumps(m).encode() + b"\n" for m in messages))
    proc.stdin.flush()


def _shrink(pipe: Any) -> None:
    if hasattr(fcntl, "F_SETPIPE_SZ"):  # Linux; elsewhere the pipe's own 16-64 KB is still far below 1 MB
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _SMALL_PIPE)


def _read_lines(pipe: Any, count: int) -> list[bytes]:
    """`count` lines read a page at a time, as a slow host reads."""
    data = b""
    while data.count(b"\n") < count:
        page = os.read(pipe.fileno(), _SMALL_PIPE)
        assert page, "stdout closed before every answer came"
        data += page
    *lines, rest = data.split(b"\n")
    assert rest == b"" and len(lines) == count
    return lines


def test_one_megabyte_replies_reach_a_host_that_reads_slowly_whole_and_every_answer_comes(
    ledger_path: Path, tmp_path: Path
) -> None:
    text = _big_document(tmp_path / "data")
    env = {"PLANNER_MCP_DATA": str(tmp_path / "data")}
    with server_process(ledger_path, "serve", env=env) as proc:
        _shrink(proc.stdout)
        ping = {"jsonrpc": "2.0", "method": "ping"}
        _send(proc, [*HANDSHAKE, _call(2, "huge"), {**ping, "id": 3}, _call(4, "huge"), {**ping, "id": 5}])
        replies = {r["id"]: r for r in (json.loads(line.decode("utf-8")) for line in _read_lines(proc.stdout, 5))}
    assert sorted(replies) == [1, 2, 3, 4, 5] and replies[3]["result"] == replies[5]["result"] == {}
    for reply in (replies[2], replies[4]):
        assert reply["result"]["isError"] is False
        assert reply["result"]["structuredContent"]["data"]["content"] == text
    assert [r["action"] for r in rows(ledger_path)] == ["read_docs", "read_docs"]


def test_a_signal_stops_a_server_whose_reply_waits_on_a_host_that_stopped_reading(
    ledger_path: Path, tmp_path: Path
) -> None:
    _big_document(tmp_path / "data")
    env = {"PLANNER_MCP_DATA": str(tmp_path / "data")}
    with server_process(ledger_path, "serve", env=env) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        _shrink(proc.stdout)
        _send(proc, [*HANDSHAKE, _call(2, "huge")])
        _read_lines(proc.stdout, 1)  # the handshake's answer
        assert os.read(proc.stdout.fileno(), 1)  # the reply has begun; the rest cannot fit the pipe: it waits
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)  # TimeoutExpired if the waiting write kept the server from stopping
        stderr = proc.stderr.read().decode()
    assert proc.returncode == 0, stderr
    assert stderr == "", stderr
    [outcome] = rows(ledger_path)
    assert (outcome["action"], outcome["decision"]) == ("read_docs", "EXECUTE")  # recorded before its reply left


_ECHO = """
import os, subprocess, sys
import anyio
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp.types import JSONRPCResponse
from server.transports.stdio.wire import claimed_stdio

async def main():
    with claimed_stdio() as (stdin, stdout):
        async with stdio_server(stdin=stdin, stdout=stdout) as (read, write):
            async for message in read:
                print("a stray print", flush=True)
                os.write(1, b"a stray write to fd 1\\n")
                subprocess.run(["echo", "a child's stray line"], check=True)
                child = subprocess.run(["cat"], capture_output=False, stdout=subprocess.PIPE, check=True)
                result = {"child read": child.stdout.decode()}
                await write.send(SessionMessage(JSONRPCResponse(jsonrpc="2.0", id=message.message.id, result=result)))
            await write.aclose()

anyio.run(main)
"""


def test_stdout_carries_only_protocol_messages_whatever_a_handler_or_its_child_prints_or_reads(
    ledger_path: Path,
) -> None:
    requests = b"".join(b'{"jsonrpc":"2.0","id":%d,"method":"ping"}\n' % i for i in (1, 2))
    proc = subprocess.run([sys.executable, "-c", _ECHO], input=requests, capture_output=True, timeout=WATCHDOG_S,
                          env=host_env(ledger_path))  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    replies = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [(r["id"], r["result"]) for r in replies] == [(1, {"child read": ""}), (2, {"child read": ""})]
    stderr = proc.stderr.decode()
    assert stderr.count("a stray print") == stderr.count("a stray write to fd 1") == 2
    assert stderr.count("a child's stray line") == 2


def test_lines_are_read_as_the_sdk_reads_them_however_the_host_cuts_its_writes(ledger_path: Path) -> None:
    line = '{"jsonrpc":"2.0","id":"nœud-3","method":"ping"}\r\n'.encode()
    cut = line.index("œ".encode()) + 1  # inside the character's two bytes
    with server_process(ledger_path, "serve") as proc:
        assert proc.stdin is not None and proc.stdout is not None
        _send(proc, HANDSHAKE)
        proc.stdin.write(b'{"jsonrpc":"2.0","id":2,"method":"ping"}\r\n' + line[:cut])  # one write: one read
        proc.stdin.flush()
        first = [json.loads(raw) for raw in _read_lines(proc.stdout, 2)]  # the ping's answer: its read took the cut
        proc.stdin.write(line[cut:] + b'\xff{"jsonrpc":"2.0","id":4,"method":"ping"}\n')
        proc.stdin.flush()
        rest = [json.loads(raw) for raw in _read_lines(proc.stdout, 2)]
        proc.stdin.close()
        proc.wait(timeout=30)
    assert [r["id"] for r in first] == [1, 2]
    answers = sorted((str(r["id"]), r.get("error", {}).get("code")) for r in rest)
    assert answers == [("None", -32700), ("nœud-3", None)]  # the stray byte spoils its own line alone
    assert proc.returncode == 0
