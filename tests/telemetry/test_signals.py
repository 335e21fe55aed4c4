"""What the call path tells monitoring: each call's end, each store read, each LLM request and each ledger write,
heard by a listener of the tests' own through a real server, loopback LLM and SQLite ledger."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from server import Settings
from server.app import build_server
from server.telemetry import CallEnded, LLMExchange, LLMRequest, Serving, Signals
from tests.conftest import PLAN, call, rows
from tests.peers.openai_server import FakeOpenAI, Reply

pytestmark = pytest.mark.anyio


class Heard(Signals):
    """Everything it is told, in order, as plain tuples."""

    def __init__(self) -> None:
        self.calls: list[CallEnded] = []
        self.writes: list[tuple[str, str | None]] = []
        self.reads: list[tuple[str, str, str | None]] = []
        self.llm: list[tuple[LLMRequest, dict[str, Any]]] = []
        self.runtimes: list[Serving | None] = []
        self._lock = threading.Lock()

    def call_ended(self, call: CallEnded) -> None:
        self.calls.append(call)

    def ledger_written(self, table: str, started_ns: int, ended_ns: int, failure: str | None) -> None:
        assert ended_ns >= started_ns
        with self._lock:
            self.writes.append((table, failure))

    @contextmanager
    def store_read(self, store: str, what: str) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            self.reads.append((store, what, type(exc).__name__))
            raise
        self.reads.append((store, what, None))

    @contextmanager
    def llm_request(self, request: LLMRequest) -> Iterator[LLMExchange]:
        told: dict[str, Any] = {}

        class Exchange(LLMExchange):
            def replied(self, **figures: Any) -> None:
                told.update(figures)

            def failed(self, kind: str) -> None:
                told["failed"] = kind

        yield Exchange()
        self.llm.append((request, told))

    def serving(self, runtime: Serving | None) -> None:
        self.runtimes.append(runtime)


async def test_a_read_is_heard_as_a_store_read_two_ledger_writes_and_the_calls_end(
    make_settings: Any, ledger_path: Path
) -> None:
    heard = Heard()
    async with Client(build_server(make_settings(), signals=heard)) as client:
        _, output = await call(client, "read_docs", {"name": "backup-restore"})
        _, missing = await call(client, "read_docs", {"name": "no-such-doc"})
    assert output["decision"] == "EXECUTE" and missing["decision"] == "ERROR"
    assert heard.reads == [("file", "docs", None), ("file", "docs", "ToolFailure")]
    assert heard.writes == [("call_intents", None), ("agent_actions", None)] * 2
    first, second = heard.calls
    assert (first.agent_id, first.tool, first.method, first.decision, first.error_kind, first.refused) == (
        "llm-planner-001",
        "read_docs",
        "tools/call",
        "EXECUTE",
        None,
        False,
    )
    assert (second.decision, second.error_kind) == ("ERROR", "NOT_FOUND")
    assert first.duration_s > 0
    assert len(rows(ledger_path)) == 2


async def test_a_name_that_is_no_tool_is_heard_without_its_text(make_settings: Any) -> None:
    heard = Heard()
    async with Client(build_server(make_settings(), signals=heard)) as client:
        result = await client.call_tool("frobnicate <b>", {})
    assert result.is_error
    [ended] = heard.calls
    assert (ended.tool, ended.refused, ended.error_kind) == (None, True, "FORBIDDEN_ACTION")
    assert heard.reads == [] and heard.writes == [("agent_actions", None)]


async def test_an_llm_call_is_heard_with_its_model_and_token_usage(llm_settings: Settings, llm: FakeOpenAI) -> None:
    heard = Heard()
    llm.enqueue(Reply.text(json.dumps(PLAN)))
    async with Client(build_server(llm_settings, signals=heard)) as client:
        _, output = await call(client, "generate_plan", {"description": "Add a VM"})
    assert output["decision"] == "EXECUTE"
    [(request, told)] = heard.llm
    assert (request.model, request.host, request.structured) == ("test-model", "127.0.0.1", True)
    assert told == {"model": "test-model", "input_tokens": 11, "output_tokens": 7, "finish": "stop"}
    [ended] = heard.calls
    assert (ended.tool, ended.model, ended.prompt_tokens, ended.completion_tokens) == (
        "generate_plan",
        "test-model",
        11,
        7,
    )
    assert "inventory" in {what for _, what, _ in heard.reads}


async def test_a_runtime_says_when_it_serves_and_when_it_stops(make_settings: Any) -> None:
    heard = Heard()
    async with Client(build_server(make_settings(), signals=heard)):
        [runtime] = heard.runtimes
        assert runtime is not None
        assert runtime.budgets() == [] and runtime.breakers() == []
    assert heard.runtimes[-1] is None
