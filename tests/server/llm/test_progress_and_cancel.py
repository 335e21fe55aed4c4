"""While the model thinks: progress for clients that asked, and a cancel that reaches the endpoint."""

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import anyio
import pytest
from mcp import Client
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.server.session import ServerSession
from mcp.shared.dispatcher import ProgressFnT

from server import Settings
from server.app import Runtime
from server.app.server import progress_reporter
from tests.conftest import API_KEY, connect, rows
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.processes import stdio_params
from tests.server.llm.conftest import plan_reply

pytestmark = pytest.mark.anyio

Notes = list[tuple[float, float | None, str | None]]


def _recorder() -> tuple[Notes, ProgressFnT]:
    notes: Notes = []

    async def record(progress: float, total: float | None, message: str | None) -> None:
        notes.append((progress, total, message))

    return notes, record


async def test_a_client_with_a_progress_token_hears_what_the_call_waits_for(
    settings_with: Callable[..., Settings], llm: FakeOpenAI, mode: str
) -> None:
    llm.enqueue(Reply.hang(0.6, content=plan_reply()))
    notes, record = _recorder()
    settings = settings_with({"progress_interval_s": 0.1, "timeout_s": 5})
    async with connect(settings, mode) as client:
        with anyio.fail_after(10):
            result = await client.call_tool("generate_plan", {"description": "Add a VM"}, progress_callback=record)
    assert not result.is_error
    values = [n[0] for n in notes]
    assert values == sorted(set(values)) and len(values) >= 4  # strictly increasing, beats while waiting
    messages = [n[2] for n in notes]
    assert "Reading inventory/proxmox" in messages
    waiting = [n for n in notes if n[2] == "Waiting for test-model at 127.0.0.1 (attempt 1 of 1)"]
    assert len(waiting) >= 3 and all(total == 5 for _, total, _ in waiting)


async def test_progress_says_when_the_endpoint_asked_to_wait(
    settings_with: Callable[..., Settings], llm: FakeOpenAI
) -> None:
    llm.enqueue(Reply.error(429, headers={"Retry-After": "0.3"}), Reply.text(plan_reply()))
    notes, record = _recorder()
    async with connect(settings_with({"max_retries": 1})) as client:
        with anyio.fail_after(10):
            await client.call_tool("generate_plan", {"description": "Add a VM"}, progress_callback=record)
    messages = [n[2] or "" for n in notes]
    asked = "HTTP 429 from 127.0.0.1; retrying in 0.3 s (as the endpoint asked), attempt 2 of 2"
    assert asked in messages
    assert "Waiting for test-model at 127.0.0.1 (attempt 2 of 2)" in messages


async def test_cancelling_a_call_stops_the_upstream_request_and_records_how_it_ended(
    llm_settings: Settings, llm: FakeOpenAI, ledger_path: Path, mode: str
) -> None:
    llm.enqueue(Reply.hang(30, content=plan_reply()))
    async with connect(llm_settings, mode) as client:
        async with anyio.create_task_group() as group:
            group.start_soon(client.call_tool, "generate_plan", {"description": "Add a VM"})
            await anyio.to_thread.run_sync(llm.wait_for_requests, 1)
            group.cancel_scope.cancel()
        with anyio.fail_after(5):
            await anyio.to_thread.run_sync(llm.wait_for_abandoned, 1)
            after = await client.call_tool("list_docs", {})
    assert not after.is_error
    cancelled = rows(ledger_path)[0]
    assert (cancelled["action"], cancelled["error_type"], cancelled["success"]) == ("generate_plan", "CANCELLED", 0)
    assert cancelled["intent_id"] == rows(ledger_path, "call_intents")[0]["id"]  # no intent is left open


@pytest.mark.subprocess
async def test_over_stdio_progress_arrives_and_a_cancel_reaches_the_endpoint(
    ledger_path: Path, llm: FakeOpenAI
) -> None:
    llm.enqueue(Reply.hang(1.5, content=plan_reply()), Reply.hang(30, content=plan_reply()))
    env = {
        "PLANNER_MCP_LEDGER": str(ledger_path),
        "OPENAI_BASE_URL": llm.base_url,
        "OPENAI_API_KEY": API_KEY,
        "PLANNER_MCP_MODEL": "test-model",
    }
    params = stdio_params(env, "serve")
    notes, record = _recorder()
    with anyio.fail_after(60):
        async with Client(params, mode="legacy") as client:
            result = await client.call_tool("analyze", {"description": "Why?"}, progress_callback=record)
            async with anyio.create_task_group() as group:
                group.start_soon(client.call_tool, "analyze", {"description": "Why again?"})
                await anyio.to_thread.run_sync(llm.wait_for_requests, 2)
                group.cancel_scope.cancel()
            await anyio.to_thread.run_sync(llm.wait_for_abandoned, 1)
    assert not result.is_error and len(notes) >= 2  # one at the start, one beat per second while waiting
    assert [r["error_type"] for r in rows(ledger_path)] == [None, "CANCELLED"]


async def test_on_the_wire_a_call_prepares_progress_only_when_its_request_carries_a_progress_token() -> None:
    # Without a token the SDK drops every notification: a reporter would only run a heartbeat task for nothing.
    # In process the SDK hands the client's callback over without a token, so the channel is kept there.
    def context(params: dict[str, Any]) -> Context[Runtime, Any]:
        request = ServerRequestContext(
            session=cast(ServerSession, None),
            lifespan_context=cast(Runtime, None),
            protocol_version="2026-07-28",
            method="tools/call",
            params=params,
        )
        return Context(request_context=request)

    call = {"name": "analyze", "arguments": {"description": "Which node is busiest?"}}
    asked = context({**call, "_meta": {"progressToken": "call-1"}})
    for wire in (True, False):
        assert progress_reporter(None, tokens_carry_progress=wire) is None
        assert progress_reporter(asked, tokens_carry_progress=wire) == asked.report_progress
    assert progress_reporter(context(call), tokens_carry_progress=True) is None
    assert progress_reporter(context({**call, "_meta": {"other": 1}}), tokens_carry_progress=True) is None
    in_process = context(call)
    assert progress_reporter(in_process, tokens_carry_progress=False) == in_process.report_progress
