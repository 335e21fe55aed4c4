"""A cancel stops only the request whose id it names exactly: over stdio (raw JSON-RPC lines) and over HTTP (raw
POSTs to a session), to a real server process, a `notifications/cancelled` naming the number 50 leaves the request
whose id is the string "50" to finish and be answered, as the ledger records it."""

import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.conftest import API_KEY, PLAN, rows
from tests.http_server import initialize, serving
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.processes import server_process

pytestmark = pytest.mark.subprocess

_INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}
TOKEN = "test-http-token-0123456789abcdef"
_SLOW = 3.0
"""How long the LLM peer holds its reply: the time the test has to send a cancel while the call is in flight."""


def _plan(request_id: int | str) -> dict[str, Any]:
    params = {"name": "generate_plan", "arguments": {"description": "Add a VM to the prod pool"}}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def _cancel(request_id: int | str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": request_id}}


class _Host:
    """A host on the other end of the server's stdio, sending and reading raw JSON-RPC lines."""

    def __init__(self, proc: "subprocess.Popen[str]") -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self._stdin, self._stdout = proc.stdin, proc.stdout
        self._read: list[dict[str, Any]] = []

    def send(self, *messages: dict[str, Any]) -> None:
        self._stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        self._stdin.flush()

    def answer(self, request_id: int | str) -> dict[str, Any]:
        """The answer to `request_id` (by type and value), in whatever order the answers come: an answer to
        another request read meanwhile is kept for its own turn."""
        while True:
            for message in self._read:
                if "id" in message and type(message["id"]) is type(request_id) and message["id"] == request_id:
                    self._read.remove(message)
                    return message
            if not (line := self._stdout.readline()):
                raise AssertionError(f"the server closed stdout without answering {request_id!r}: {self._read}")
            self._read.append(json.loads(line))


@contextmanager
def _host(ledger_path: Path, llm: FakeOpenAI) -> Iterator[_Host]:
    """The server over stdio, initialized; killed after 30 s at most, which ends any wait for an answer."""
    env = {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": API_KEY, "PLANNER_MCP_MODEL": "test-model"}
    with server_process(
        ledger_path, "serve", env=env, watchdog_s=30, stderr=subprocess.DEVNULL, encoding="utf-8"
    ) as proc:
        host = _Host(proc)
        host.send(_INIT, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert "result" in host.answer(1)
        yield host


def test_a_cancel_naming_the_number_50_does_not_stop_the_request_whose_id_is_the_string_50(
    ledger_path: Path, llm: FakeOpenAI
) -> None:
    llm.enqueue(Reply.text(json.dumps(PLAN), delay=_SLOW))
    with _host(ledger_path, llm) as host:
        host.send(_plan("50"))
        llm.wait_for_requests(1, timeout=20)  # the call is in flight, waiting for the LLM
        host.send(_cancel(50), _cancel(" 50"), _cancel("050"))
        answer = host.answer("50")
    assert answer["result"]["structuredContent"]["decision"] == "EXECUTE"
    [row] = rows(ledger_path)
    assert (row["action"], row["decision"], row["client_request_id"]) == ("generate_plan", "EXECUTE", "50")


def test_of_two_requests_the_sdk_files_under_one_id_a_cancel_naming_the_older_stops_neither(
    ledger_path: Path, llm: FakeOpenAI
) -> None:
    llm.enqueue(*[Reply.text(json.dumps(PLAN), delay=_SLOW)] * 2)
    with _host(ledger_path, llm) as host:
        host.send(_plan(7))
        llm.wait_for_requests(1, timeout=20)
        host.send(_plan("7"))  # the SDK files it under 7 too, in the older one's place
        llm.wait_for_requests(2, timeout=20)
        host.send(_cancel(7))  # would stop "7": ignored, since 7 can no longer be told apart
        answers = [host.answer(7), host.answer("7")]
    assert [a["result"]["structuredContent"]["decision"] for a in answers] == ["EXECUTE", "EXECUTE"]
    assert sorted(r["client_request_id"] for r in rows(ledger_path)) == ["7", "7"]


def _sse_answer(text: str, request_id: int | str) -> dict[str, Any]:
    """The answer to `request_id` in a POST's event stream."""
    messages = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    for message in messages:
        if type(message.get("id")) is type(request_id) and message["id"] == request_id:
            return message  # type: ignore[no-any-return]
    raise AssertionError(f"no answer to {request_id!r} in {text[:500]!r}")


def test_over_http_a_cancel_naming_the_number_50_does_not_stop_the_request_whose_id_is_the_string_50(
    ledger_path: Path, llm: FakeOpenAI
) -> None:
    llm.enqueue(Reply.text(json.dumps(PLAN), delay=_SLOW))
    env = {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": API_KEY, "PLANNER_MCP_MODEL": "test-model"}
    with serving(ledger_path, env={"PLANNER_MCP_HTTP_TOKEN": TOKEN, **env}) as served, ThreadPoolExecutor(1) as pool:
        url = served.url
        session = initialize(url, authorization=f"Bearer {TOKEN}").headers["mcp-session-id"]
        headers = {
            "authorization": f"Bearer {TOKEN}",
            "mcp-session-id": session,
            "mcp-protocol-version": "2025-11-25",
            "accept": "application/json, text/event-stream",
        }

        def post(message: dict[str, Any]) -> httpx2.Response:
            return httpx2.post(url, json=message, headers=headers, timeout=30)

        assert post({"jsonrpc": "2.0", "method": "notifications/initialized"}).status_code == 202
        call = pool.submit(post, _plan("50"))
        llm.wait_for_requests(1, timeout=20)  # the call is in flight, waiting for the LLM
        cancels = [post(_cancel(named)).status_code for named in (50, " 50", "050")]
        answer = _sse_answer(call.result(timeout=30).text, "50")
    assert answer["result"]["structuredContent"]["decision"] == "EXECUTE"
    [row] = rows(ledger_path)
    assert (row["action"], row["decision"], row["client_request_id"]) == ("generate_plan", "EXECUTE", "50")
    assert cancels == [202, 202, 202]  # accepted, and ignored: they name no request in flight
