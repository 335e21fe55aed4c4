"""Hostile frames on stdin: the stdio server answers what it can, drops what it cannot parse, and keeps serving.

One real `python -m server serve` process takes every frame in turn; after each one a valid request must be
answered correctly within a bound, stdout must carry nothing but JSON-RPC 2.0 messages, and at the end the
server must exit cleanly on EOF. Every wait is bounded and a watchdog kills the process if anything stalls.
"""

import json
import queue
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from server.governance.envelope import MAX_ARGUMENT_BYTES, MAX_REFUSED_ARGUMENT_BYTES, json_size
from tests.conftest import DEFAULT_TOOLS, rows
from tests.processes import server_process

pytestmark = pytest.mark.subprocess

_REPLY_S = 15.0
"""How long one answer may take: generous, the CPU is shared and some frames are 10 MB."""
_WATCHDOG_S = 120.0
"""The whole module's bound on the server process; past it the process is killed and every wait fails."""
_TEN_MB = 10 * 1024 * 1024
_DIGITS = 10**5
_DEPTH = 100_000
_METHOD_NOT_FOUND, _INVALID_PARAMS = -32601, -32602
_PARSE_ERROR, _INVALID_REQUEST = -32700, -32600
_UNANSWERABLE = {_PARSE_ERROR, _INVALID_REQUEST}
"""What the answer to a frame that could not be read as JSON-RPC carries, with `id: null`."""
_SILENT_NOTIFICATION = "planner/no-such-notification"


class _Stdio:
    """A server process on binary pipes; a reader thread sorts stdout lines into messages and garbage."""

    def __init__(self, proc: "subprocess.Popen[bytes]", ledger_path: Path, stderr_path: Path) -> None:
        self.proc = proc
        self.ledger_path = ledger_path
        self._stderr_path = stderr_path
        self.messages: list[dict[str, Any]] = []
        self.garbage: list[bytes] = []
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._early: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._next = 0

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                message = json.loads(line.decode("utf-8"))  # strict: stdout must be valid UTF-8 JSON
            except ValueError:
                message = None
            if isinstance(message, dict) and message.get("jsonrpc") == "2.0":
                self.messages.append(message)
                self._inbox.put(message)
            else:
                self.garbage.append(line[:200])
        self._inbox.put(None)

    def send(self, frame: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(frame)
        self.proc.stdin.flush()

    def send_message(self, message: dict[str, Any]) -> None:
        self.send(json.dumps(message).encode() + b"\n")

    def answer(self, request_id: Any) -> dict[str, Any]:
        """The next answer to `request_id`; answers to other ids that arrive meanwhile are kept for later."""
        for i, message in enumerate(self._early):
            if message.get("id") == request_id and "method" not in message:
                return self._early.pop(i)
        while True:
            try:
                item = self._inbox.get(timeout=_REPLY_S)
            except queue.Empty:
                raise AssertionError(f"no answer to {request_id!r} within {_REPLY_S} s: the server hangs") from None
            if item is None:
                tail = self._stderr_path.read_text(errors="replace")[-2000:]
                raise AssertionError(f"stdout closed before an answer to {request_id!r}: the server died\n{tail}")
            if item.get("id") == request_id and "method" not in item:
                return item
            self._early.append(item)

    def request(self, method: str, params: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        self._next += 1
        request_id = f"alive-{self._next}"
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send_message(message)
        return request_id, self.answer(request_id)

    def assert_alive(self) -> None:
        """A valid request (ping, tools/list and a list_docs call in turn) is answered correctly, and stdout is
        clean so far."""
        kind = self._next % 3
        if kind == 0:
            _, reply = self.request("ping")
            assert reply.get("result") == {}, reply
        elif kind == 1:
            _, reply = self.request("tools/list")
            assert [t["name"] for t in reply["result"]["tools"]] == DEFAULT_TOOLS
        else:
            _, reply = self.request("tools/call", {"name": "list_docs", "arguments": {}})
            assert reply["result"]["isError"] is False
            assert reply["result"]["structuredContent"]["decision"] == "EXECUTE"
        assert self.garbage == [], f"stdout carried non-protocol bytes: {self.garbage}"
        assert self.proc.poll() is None

    def close(self, timeout: float) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        return code

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=_REPLY_S)
        self._reader.join(timeout=_REPLY_S)


@dataclass(frozen=True)
class _Frame:
    name: str
    data: bytes
    answered: tuple[Any, ...] = ()
    """The ids the server must answer; a frame with none is dropped by the transport (or is a notification)."""
    code: int | None = None
    """The JSON-RPC error code of those answers; None: they are results."""
    tool_error: str | None = None
    """For tools/call: the ErrorInfo type the result carries."""
    unreadable: int | None = None
    """For a frame that is not JSON (-32700) or not a JSON-RPC message (-32600): the code of the error answered
    with `id: null`. None: no such answer (a blank line, or a message the SDK reads and ignores)."""


def _line(text: str) -> bytes:
    return text.encode() + b"\n"


def _call(request_id: str, arguments: str, tool: str = "list_docs") -> str:
    """A tools/call frame written by hand, so that its arguments can be anything, valid JSON or not."""
    params = f'{{"name":"{tool}","arguments":{arguments}}}'
    return f'{{"jsonrpc":"2.0","id":"{request_id}","method":"tools/call","params":{params}}}'


_NINES = "9" * _DIGITS
_MAX_INT = "9" * 4300
"""The longest integer the SDK's parser reads, and Python's default int/str conversion limit."""
_FRAMES = [
    # Not JSON at all, or cut short.
    _Frame("invalid JSON", _line('{"jsonrpc": "2.0", "id": "cut", "method": "ping"'), unreadable=_PARSE_ERROR),
    _Frame("plain text", _line("hello, is this the planner?"), unreadable=_PARSE_ERROR),
    # Bytes that are not UTF-8: alone, and inside a request's id (the transport reads them as U+FFFD).
    _Frame("invalid UTF-8 bytes alone", b"\xff\xfe\xfd\x80\xc3\n", unreadable=_PARSE_ERROR),
    _Frame("invalid UTF-8 in an id", b'{"jsonrpc":"2.0","id":"utf8-\xff","method":"ping"}\n', ("utf8-\ufffd",)),
    _Frame(
        "invalid UTF-8 in an argument",
        _call("utf8-arg", '{"name":"vm-\xff"}', "read_docs").encode("latin-1") + b"\n",
        ("utf8-arg",),
        tool_error="INVALID_NAME",
    ),
    # NUL bytes: raw in a string and between tokens (not JSON), escaped in a string (JSON), alone.
    _Frame(
        "raw NUL inside a string", b'{"jsonrpc":"2.0","id":"nul\x00raw","method":"ping"}\n', unreadable=_PARSE_ERROR
    ),
    _Frame(
        "escaped NUL inside a string", _line('{"jsonrpc":"2.0","id":"nul\\u0000esc","method":"ping"}'), ("nul\0esc",)
    ),
    _Frame("NUL between tokens", b'{"jsonrpc":"2.0",\x00"id":"nul-out","method":"ping"}\n', unreadable=_PARSE_ERROR),
    _Frame("a line of NUL bytes", b"\x00" * 64 + b"\n", unreadable=_PARSE_ERROR),
    # Numbers: 10^5 digits (over the parser's and Python's 4300-digit limit), and 4300 digits (at it).
    _Frame("a 10^5-digit id", _line(f'{{"jsonrpc":"2.0","id":{_NINES},"method":"ping"}}'), unreadable=_PARSE_ERROR),
    _Frame("a 10^5-digit integer argument", _line(_call("big-int", f'{{"x":{_NINES}}}')), unreadable=_PARSE_ERROR),
    _Frame(
        "a 10^5-digit decimal argument",
        _line(_call("big-decimal", f'{{"x":1.{_NINES}}}')),
        ("big-decimal",),
        tool_error="INVALID_INPUT",
    ),
    _Frame("a 4300-digit id", _line(f'{{"jsonrpc":"2.0","id":{_MAX_INT},"method":"ping"}}'), (int(_MAX_INT),)),
    _Frame(
        "a 4300-digit integer argument",
        _line(_call("max-int", f'{{"x":{_MAX_INT}}}')),
        ("max-int",),
        tool_error="INVALID_INPUT",
    ),
    # Nesting: 10^5 levels (past the parser's depth limit) and 150 (within it, so the gate sees it).
    _Frame(
        "10^5 nested arrays in an argument",
        _line(_call("deep-arrays", f'{{"x":{"[" * _DEPTH}{"]" * _DEPTH}}}')),
        unreadable=_PARSE_ERROR,
    ),
    _Frame(
        "10^5 nested objects in an argument",
        _line(_call("deep-objects", '{"x":' + '{"a":' * _DEPTH + "1" + "}" * (_DEPTH + 1))),
        unreadable=_PARSE_ERROR,
    ),
    _Frame("10^5 nested arrays alone", _line("[" * _DEPTH + "]" * _DEPTH), unreadable=_PARSE_ERROR),
    _Frame(
        "150 nested arrays in an argument",
        _line(_call("nested-150", f'{{"x":{"[" * 150}{"]" * 150}}}')),
        ("nested-150",),
        tool_error="INVALID_INPUT",
    ),
    # A 10 MB line of garbage (the 10 MB argument is in the ledger test below).
    _Frame("a 10 MB line of garbage", b"x" * _TEN_MB + b"\n", unreadable=_PARSE_ERROR),
    # Methods: unknown, as a request and as a notification.
    _Frame(
        "an unknown method",
        _line('{"jsonrpc":"2.0","id":"unknown","method":"planner/no-such-method"}'),
        ("unknown",),
        _METHOD_NOT_FOUND,
    ),
    _Frame("an unknown notification", _line(f'{{"jsonrpc":"2.0","method":"{_SILENT_NOTIFICATION}"}}')),
    # Batches (JSON-RPC arrays; MCP has none since 2025-06-18).
    _Frame(
        "a batch",
        _line('[{"jsonrpc":"2.0","id":"batch-1","method":"ping"},{"jsonrpc":"2.0","id":"batch-2","method":"ping"}]'),
        unreadable=_INVALID_REQUEST,
    ),
    _Frame("an empty batch", _line("[]"), unreadable=_INVALID_REQUEST),
    # Envelopes that are JSON but not JSON-RPC 2.0.
    _Frame("a request missing jsonrpc", _line('{"id":"no-jsonrpc","method":"ping"}'), unreadable=_INVALID_REQUEST),
    _Frame("a request missing method", _line('{"jsonrpc":"2.0","id":"no-method"}'), unreadable=_INVALID_REQUEST),
    _Frame("jsonrpc 1.0", _line('{"jsonrpc":"1.0","id":"v1","method":"ping"}'), unreadable=_INVALID_REQUEST),
    _Frame("a null id", _line('{"jsonrpc":"2.0","id":null,"method":"ping"}')),
    _Frame("a float id", _line('{"jsonrpc":"2.0","id":1.5,"method":"ping"}')),
    _Frame("an object id", _line('{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}')),
    _Frame("a response to nothing", _line('{"jsonrpc":"2.0","id":"stray","result":{}}')),
    # Wrong types for params: dropped when the envelope itself is wrong, -32602 when the method's params are.
    _Frame(
        "params as an array",
        _line('{"jsonrpc":"2.0","id":"params-array","method":"tools/call","params":[1,2]}'),
        unreadable=_INVALID_REQUEST,
    ),
    _Frame(
        "params as a string",
        _line('{"jsonrpc":"2.0","id":"params-str","method":"ping","params":"x"}'),
        unreadable=_INVALID_REQUEST,
    ),
    _Frame("arguments as an array", _line(_call("args-array", "[1]")), ("args-array",), _INVALID_PARAMS),
    _Frame(
        "a tool name as a number",
        _line('{"jsonrpc":"2.0","id":"name-int","method":"tools/call","params":{"name":5}}'),
        ("name-int",),
        _INVALID_PARAMS,
    ),
    _Frame(
        "a bad log level",
        _line('{"jsonrpc":"2.0","id":"level","method":"logging/setLevel","params":{"level":"LOUD"}}'),
        ("level",),
        _INVALID_PARAMS,
    ),
    # Blank lines.
    _Frame("an empty line", b"\n"),
    _Frame("a line of whitespace", b" \t  \t \n"),
]


@pytest.fixture(scope="module")
def stdio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Stdio]:
    """One server for the module (a spawn costs ~0.5 s), past a proper 2025-11-25 handshake."""
    home = tmp_path_factory.mktemp("hostile")
    ledger_path, stderr_path = home / "ledger" / "ledger.db", home / "stderr.log"
    with (
        stderr_path.open("wb") as stderr,  # drained to a file, so a chatty server never blocks on it
        server_process(ledger_path, "serve", stderr=stderr, watchdog_s=_WATCHDOG_S) as proc,
    ):
        server = _Stdio(proc, ledger_path, stderr_path)
        try:
            server.send_message(
                {
                    "jsonrpc": "2.0",
                    "id": "init",
                    "method": "initialize",
                    "params": {
                        "protocolVersion": "2025-11-25",
                        "capabilities": {},
                        "clientInfo": {"name": "hostile-test", "version": "1"},
                    },
                }
            )
            assert server.answer("init")["result"]["protocolVersion"] == "2025-11-25"
            server.send_message({"jsonrpc": "2.0", "method": "notifications/initialized"})
            server.assert_alive()
            yield server
        finally:
            server.stop()


@pytest.mark.parametrize("frame", _FRAMES, ids=[f.name for f in _FRAMES])
def test_a_hostile_frame_is_answered_even_if_unreadable_and_the_server_keeps_serving(
    stdio: _Stdio, frame: _Frame
) -> None:
    stdio.send(frame.data)
    if frame.unreadable is not None:
        reply = stdio.answer(None)
        assert reply["error"]["code"] == frame.unreadable and reply["id"] is None, reply
    for request_id in frame.answered:
        reply = stdio.answer(request_id)
        if frame.code is not None:
            assert reply["error"]["code"] == frame.code, reply
        elif frame.tool_error is not None:
            assert reply["result"]["isError"] is True
            assert reply["result"]["structuredContent"]["error"]["type"] == frame.tool_error
        else:
            assert "result" in reply, reply
    stdio.assert_alive()


def test_two_requests_in_flight_with_the_same_id_are_both_served(stdio: _Stdio) -> None:
    call = _line(_call("twin", "{}"))
    stdio.send(call + call)
    for _ in range(2):
        reply = stdio.answer("twin")
        assert reply["result"]["isError"] is False
        assert reply["result"]["structuredContent"]["decision"] == "EXECUTE"
    stdio.assert_alive()


@pytest.mark.parametrize("size", [MAX_ARGUMENT_BYTES + 1, _TEN_MB], ids=["64 KiB + 1", "10 MB"])
def test_arguments_over_the_limit_are_refused_before_any_work(stdio: _Stdio, size: int) -> None:
    arguments = {"name": "a" * (size - json_size({"name": ""}))}
    assert json_size(arguments) == size
    request_id = f"oversize-{size}"
    stdio.send_message(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": "read_docs", "arguments": arguments},
        }
    )
    result = stdio.answer(request_id)["result"]
    assert result["isError"] is True
    error = result["structuredContent"]["error"]
    assert error["type"] == "INVALID_INPUT"
    assert f"larger than {MAX_ARGUMENT_BYTES} bytes" in error["message"]
    control_id, control = stdio.request("tools/call", {"name": "read_docs", "arguments": {"name": "vm-provisioning"}})
    assert control["result"]["isError"] is False
    # The ledger has the refusal (its arguments bounded), no intent for it, and an intent for the call after it.
    intents = [r["client_request_id"] for r in rows(stdio.ledger_path, "call_intents")]
    assert request_id not in intents and control_id in intents
    (refusal,) = [r for r in rows(stdio.ledger_path) if r["client_request_id"] == request_id]
    assert refusal["refused"] == 1 and refusal["error_type"] == "INVALID_INPUT" and refusal["intent_id"] is None
    assert len(refusal["arguments"]) < 2 * MAX_REFUSED_ARGUMENT_BYTES and '"_sha256"' in refusal["arguments"]
    stdio.assert_alive()


_REJECTED = "args-a-string"


def test_a_call_whose_params_the_sdk_rejects_is_answered_invalid_params_and_recorded(stdio: _Stdio) -> None:
    # The SDK answers it before our handler runs; the ledger must still hold it, refused, with what was sent.
    stdio.send(_line(_call(_REJECTED, '"x"', "ssh")))
    reply = stdio.answer(_REJECTED)
    assert reply["error"]["code"] == _INVALID_PARAMS, reply
    assert _REJECTED not in [r["client_request_id"] for r in rows(stdio.ledger_path, "call_intents")]
    (refusal,) = [r for r in rows(stdio.ledger_path) if r["client_request_id"] == _REJECTED]
    assert (refusal["action"], refusal["refused"], refusal["error_type"]) == ("ssh", 1, "INVALID_INPUT")
    assert json.loads(refusal["arguments"]) == {"arguments": "x"} and refusal["notes"] == "tools/call"
    assert "params.arguments" in refusal["error_message"]
    stdio.assert_alive()


def test_stdout_carried_only_protocol_messages_and_the_server_exits_cleanly_at_eof(stdio: _Stdio) -> None:
    """Runs last: closes the module's server. Until then every answer was checked as it came."""
    stdio.send(b'{"jsonrpc":"2.0","id":"unterminated","method":')  # a last frame cut short by EOF
    assert stdio.close(timeout=_REPLY_S) == 0
    assert stdio.garbage == []
    assert all(m.get("jsonrpc") == "2.0" for m in stdio.messages)
    assert not [m for m in stdio.messages if "method" in m], "the server sent requests or notifications unasked"
    answered = Counter(json.dumps(m.get("id")) for m in stdio.messages)
    expected = {json.dumps(i) for f in _FRAMES for i in f.answered} | {'"init"', '"twin"', json.dumps(_REJECTED)}
    expected |= {json.dumps(f"oversize-{size}") for size in (MAX_ARGUMENT_BYTES + 1, _TEN_MB)}
    # An answer nobody asked for (to a dropped frame) may only say the frame could not be read.
    for message in stdio.messages:
        key = json.dumps(message.get("id"))
        if key not in expected and not key.startswith('"alive-'):
            assert message.get("error", {}).get("code") in _UNANSWERABLE, message
        elif key != '"twin"':
            assert answered[key] == 1, f"{key} was answered {answered[key]} times"
    assert _SILENT_NOTIFICATION not in json.dumps(stdio.messages)
    # One `id: null` error for each unreadable frame, the last one cut short by EOF included; none for blank lines.
    unreadable = [m for m in stdio.messages if m.get("id") is None]
    assert len(unreadable) == len([f for f in _FRAMES if f.unreadable is not None]) + 1
