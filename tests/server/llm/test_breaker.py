"""The LLM endpoint's circuit breaker: after repeated outages (unreachable, timed out, 5xx past the retries) calls
fail fast, sending nothing and saying when one will be sent again; that one call's success closes it. An endpoint
that answers, even with a refusal, is an endpoint that works."""

import functools
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from server import Settings
from server.call.failures import ToolFailure
from server.config.settings import LLMConfig
from server.llm.client import LLMClient
from tests.clock import ManualClock
from tests.conftest import call, connect, rows
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.server.llm.conftest import plan_reply

pytestmark = pytest.mark.anyio

_ASK = [{"role": "user", "content": "Why?"}]


async def _fails(client: LLMClient) -> ToolFailure:
    with pytest.raises(ToolFailure) as failure:
        await client.complete(_ASK, temperature=0)
    return failure.value


async def test_repeated_outages_open_the_breaker_and_a_success_after_the_cooldown_closes_it(
    llm_config: Callable[..., LLMConfig], llm: FakeOpenAI
) -> None:
    clock = ManualClock()
    client = LLMClient(llm_config(breaker_failures=2, breaker_cooldown_s=30), clock=clock)
    try:
        llm.default = Reply.error(503)
        kinds = [(await _fails(client)).kind for _ in range(2)]
        assert kinds == ["LLM_UNAVAILABLE", "LLM_UNAVAILABLE"] and client.breaker.state == "open"
        sent = len(llm.chat_requests)
        clock.now += 10
        fast = await _fails(client)
        assert len(llm.chat_requests) == sent  # open: nothing was sent
        assert fast.kind == "LLM_UNAVAILABLE"
        assert "failed 2 calls in a row (last: LLM_UNAVAILABLE)" in fast.message
        assert "fail fast for 20 s more" in fast.message and "not sent" in fast.message

        llm.default = Reply.text("Because.")
        clock.now += 21  # the cooldown has passed: one call tries the endpoint, and its success closes the breaker
        reply = await client.complete(_ASK, temperature=0)
        assert reply.content == "Because." and client.breaker.state == "closed"
        assert (await client.complete(_ASK, temperature=0)).content == "Because."
    finally:
        await client.aclose()


async def test_a_failed_trial_opens_the_breaker_for_another_cooldown(
    llm_config: Callable[..., LLMConfig], llm: FakeOpenAI
) -> None:
    clock = ManualClock()
    client = LLMClient(llm_config(breaker_failures=1, breaker_cooldown_s=30), clock=clock)
    try:
        llm.stop()
        assert (await _fails(client)).kind == "LLM_UNREACHABLE" and client.breaker.state == "open"
        clock.now += 31
        assert client.breaker.state == "half-open"
        assert (await _fails(client)).kind == "LLM_UNREACHABLE"  # the trial, sent and failed
        assert client.breaker.state == "open"
        assert "fail fast for 30 s more" in (await _fails(client)).message
    finally:
        await client.aclose()


async def test_while_one_call_tries_the_endpoint_again_the_others_fail_fast(
    llm_config: Callable[..., LLMConfig], llm: FakeOpenAI
) -> None:
    clock = ManualClock()
    client = LLMClient(llm_config(breaker_failures=1, breaker_cooldown_s=30), clock=clock)
    try:
        llm.default = Reply.error(500)
        await _fails(client)
        clock.now += 31
        llm.default = Reply.text("Because.", delay=1)
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(client.complete, _ASK, temperature=0))
            with anyio.fail_after(5):
                while not llm.chat_requests[1:]:
                    await anyio.sleep(0.01)
            other = await _fails(client)
        assert "one call is trying it again now" in other.message
        assert len(llm.chat_requests) == 2 and client.breaker.state == "closed"
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    "answer",
    [
        Reply.error(401),
        Reply.error(404),
        Reply.error(429, headers={"Retry-After": "120"}),
        Reply(body=b"<html>not a completion</html>", headers={"Content-Type": "application/json"}),
    ],
    ids=["401", "404", "429", "not-json"],
)
async def test_an_endpoint_that_answers_with_a_refusal_does_not_open_it(
    llm_config: Callable[..., LLMConfig], llm: FakeOpenAI, answer: Reply
) -> None:
    client = LLMClient(llm_config(breaker_failures=1))
    try:
        llm.default = answer
        for _ in range(3):
            await _fails(client)
        assert client.breaker.state == "closed" and len(llm.chat_requests) == 3
    finally:
        await client.aclose()


async def test_a_timeout_counts_as_an_outage(llm_config: Callable[..., LLMConfig], llm: FakeOpenAI) -> None:
    client = LLMClient(llm_config(breaker_failures=1, timeout_s=0.3))
    try:
        llm.default = Reply.text("late", delay=2)
        assert (await _fails(client)).kind == "LLM_TIMEOUT"
        assert client.breaker.state == "open"
    finally:
        await client.aclose()


async def test_through_the_server_an_open_breaker_refuses_before_reserving_and_the_ledger_records_why(
    settings_with: Callable[..., Settings], write_policy: Callable[..., Path], llm: FakeOpenAI, ledger_path: Path
) -> None:
    llm.default = Reply.error(502)
    settings = settings_with({"breaker_failures": 2}, policy_path=write_policy(daily_token_budget=100_000))
    async with connect(settings) as client:
        outputs = [(await call(client, "generate_plan", {"description": "Add a VM"}))[1] for _ in range(3)]
        llm.default = Reply.text(plan_reply())
        last, _ = await call(client, "analyze", {"description": "Why?"})
    assert [o["error"]["type"] for o in outputs] == ["LLM_UNAVAILABLE"] * 3
    assert "not sent" in outputs[2]["error"]["message"] and "not sent" not in outputs[1]["error"]["message"]
    assert len(llm.chat_requests) == 2  # the third call sent nothing
    assert last.is_error  # the breaker is still open: its cooldown (30 s by default) has not passed
    refused = rows(ledger_path)[2]
    assert refused["success"] == 0 and "not sent" in refused["error_message"]
    prompt_reservations = [r for r in rows(ledger_path, "token_reservations") if r["stage"] == "request"]
    assert len(prompt_reservations) == 2  # the calls that sent a request reserved their prompt; the refused did not
