"""Bounded time: retries that honour Retry-After inside one deadline, timeouts that abandon the request."""

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from server import Settings
from server.config.settings import LLMConfig
from tests.conftest import call, call_once, connect, rows
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.server.llm.conftest import plan_reply

pytestmark = pytest.mark.anyio


def _gap(llm: FakeOpenAI, first: int, second: int) -> float:
    requests = llm.chat_requests
    return requests[second].received_at - requests[first].received_at


async def test_a_429_with_retry_after_is_waited_out_and_then_succeeds(
    settings_with: Callable[..., Settings], llm: FakeOpenAI, ledger_path: Path
) -> None:
    llm.enqueue(Reply.error(429, headers={"Retry-After": "1"}), Reply.text(plan_reply()))
    result, output = await call_once(settings_with({"max_retries": 2}), "generate_plan", {"description": "Add a VM"})
    assert not result.is_error and output["decision"] == "EXECUTE"
    assert output["provenance"]["llm_attempts"] == 2
    assert _gap(llm, 0, 1) >= 0.95  # the endpoint's word, not our backoff
    [row] = rows(ledger_path)
    assert row["success"] == 1 and row["prompt_tokens"] == 11  # only the successful reply's usage


async def test_retry_after_ms_is_honoured_too(settings_with: Callable[..., Settings], llm: FakeOpenAI) -> None:
    llm.enqueue(Reply.error(429, headers={"retry-after-ms": "300"}), Reply.text(plan_reply()))
    result, _ = await call_once(settings_with({"max_retries": 1}), "generate_plan", {"description": "Add a VM"})
    assert not result.is_error and _gap(llm, 0, 1) >= 0.28


async def test_server_errors_are_retried_with_backoff_up_to_the_limit(
    settings_with: Callable[..., Settings], llm: FakeOpenAI
) -> None:
    llm.enqueue(Reply.error(500), Reply.error(503), Reply.text(plan_reply()))
    _, output = await call_once(settings_with({"max_retries": 2}), "generate_plan", {"description": "Add a VM"})
    assert output["decision"] == "EXECUTE" and output["provenance"]["llm_attempts"] == 3
    assert _gap(llm, 0, 1) >= 0.25  # jittered over the upper half of 0.5 s


async def test_server_errors_past_the_retry_limit_fail_with_the_count(
    settings_with: Callable[..., Settings], llm: FakeOpenAI
) -> None:
    llm.default = Reply.error(502)
    async with connect(settings_with({"max_retries": 2})) as client:
        result, output = await call(client, "analyze", {"description": "Why?"})
        after, _ = await call(client, "list_docs")
    assert result.is_error and not after.is_error
    assert output["error"]["type"] == "LLM_UNAVAILABLE" and "3 attempts" in output["error"]["message"]
    assert len(llm.chat_requests) == 3


async def test_a_backoff_longer_than_the_time_left_ends_the_call_without_claiming_the_endpoint_asked_for_it(
    settings_with: Callable[..., Settings], llm: FakeOpenAI
) -> None:
    llm.default = Reply.error(500)  # no Retry-After: the wait would be our own backoff, 0.25-0.5 s
    _, output = await call_once(
        settings_with({"max_retries": 10, "timeout_s": 0.2}), "analyze", {"description": "Why?"}
    )
    message = output["error"]["message"]
    assert output["error"]["type"] == "LLM_UNAVAILABLE" and len(llm.chat_requests) == 1
    assert "1 attempt" in message and "too little to try again" in message and "asked" not in message


async def test_a_retry_after_longer_than_the_time_left_fails_at_once_and_says_when_to_retry(
    settings_with: Callable[..., Settings], llm: FakeOpenAI
) -> None:
    llm.enqueue(Reply.error(429, headers={"Retry-After": "120"}))
    async with connect(settings_with({"max_retries": 3, "timeout_s": 5})) as client:
        with anyio.fail_after(3):  # well before the 5 s limit: nothing was waited for
            result, output = await call(client, "generate_plan", {"description": "Add a VM"})
    assert result.is_error and output["error"]["type"] == "LLM_RATE_LIMITED"
    assert "asked to retry after 120 s" in output["error"]["message"]
    assert output["error"]["recommended_action"] == "Retry after 120 s."
    assert len(llm.chat_requests) == 1


@pytest.mark.parametrize("status", [400, 401, 404])
async def test_a_request_the_endpoint_rejects_is_not_retried(
    settings_with: Callable[..., Settings], llm: FakeOpenAI, status: int
) -> None:
    llm.default = Reply.error(status)
    _, output = await call_once(
        settings_with({"max_retries": 3, "structured_output": "off"}), "generate_plan", {"description": "Add a VM"}
    )
    assert output["error"]["type"] == "LLM_HTTP_ERROR" and len(llm.chat_requests) == 1


async def test_a_hang_past_the_timeout_fails_within_it_and_drops_the_upstream_request(
    settings_with: Callable[..., Settings], llm: FakeOpenAI, ledger_path: Path
) -> None:
    llm.enqueue(Reply.hang(30, content=plan_reply()))
    async with connect(settings_with({"timeout_s": 0.5, "max_retries": 2})) as client:
        with anyio.fail_after(5):
            result, output = await call(client, "generate_plan", {"description": "Add a VM"})
        await anyio.to_thread.run_sync(llm.wait_for_abandoned, 1)  # the connection was closed, not left hanging
        llm.enqueue(Reply.text(plan_reply()))
        healed, _ = await call(client, "generate_plan", {"description": "Add a VM"})
    assert result.is_error and output["error"]["type"] == "LLM_TIMEOUT"
    assert "0.5 s" in output["error"]["message"] and "PLANNER_MCP_LLM_TIMEOUT" in output["error"]["recommended_action"]
    assert not healed.is_error
    assert [r["error_type"] for r in rows(ledger_path)] == ["LLM_TIMEOUT", None]


async def test_an_endpoint_that_refuses_connections_is_retried_then_reported(
    make_settings: Callable[..., Settings],
) -> None:
    with FakeOpenAI() as gone:
        base_url = gone.base_url
    settings = make_settings(llm=LLMConfig(base_url=base_url, model="m", timeout_s=10, max_retries=1))
    _, output = await call_once(settings, "analyze", {"description": "Why?"})
    assert output["error"]["type"] == "LLM_UNREACHABLE" and "2 attempts" in output["error"]["message"]


def test_the_default_time_limit_is_well_under_a_minute() -> None:
    config = LLMConfig()
    assert config.timeout_s <= 30 and config.max_retries == 2 and config.max_tokens == 2000
