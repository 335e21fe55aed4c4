"""The FakeOpenAI test peer behaves like an OpenAI server for the real openai client."""

import threading
import time
from collections.abc import Iterator

import openai
import pytest

from tests.peers.openai_server import FakeOpenAI, Reply

# Every client call is bounded: no test can wait longer than this on the peer.
CLIENT_TIMEOUT = 5.0
MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "plan it"}]


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def client(llm: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0, timeout=CLIENT_TIMEOUT) as c:
        yield c


def ask(client: openai.OpenAI, model: str = "test-model") -> str | None:
    completion = client.chat.completions.create(model=model, messages=MESSAGES)
    return completion.choices[0].message.content


def test_the_client_receives_the_scripted_content_and_usage(llm: FakeOpenAI, client: openai.OpenAI) -> None:
    llm.enqueue(Reply.text("route via edge-1", usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}))

    completion = client.chat.completions.create(model="planner-large", messages=MESSAGES)

    assert completion.object == "chat.completion"
    assert completion.model == "planner-large"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "route via edge-1"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (3, 4)
    assert completion.usage.total_tokens == 7


def test_default_usage_and_model_override_are_reported(llm: FakeOpenAI, client: openai.OpenAI) -> None:
    llm.enqueue(Reply.text("ok", model="gpt-fixed"))

    completion = client.chat.completions.create(model="asked-for", messages=MESSAGES)

    assert completion.model == "gpt-fixed"
    assert completion.usage is not None
    assert completion.usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"}) == {
        "prompt_tokens": 11,
        "completion_tokens": 7,
        "total_tokens": 18,
    }


def test_an_error_reply_raises_api_status_error_with_its_status(llm: FakeOpenAI, client: openai.OpenAI) -> None:
    llm.enqueue(Reply.error(429, "slow down", headers={"Retry-After": "1"}))

    with pytest.raises(openai.APIStatusError) as caught:
        ask(client)

    assert caught.value.status_code == 429
    assert isinstance(caught.value, openai.RateLimitError)
    assert caught.value.body == {"message": "slow down", "type": "rate_limit_error", "param": None, "code": None}
    assert caught.value.response.headers["retry-after"] == "1"


def test_a_bare_error_status_gets_an_openai_style_body(llm: FakeOpenAI, client: openai.OpenAI) -> None:
    llm.enqueue(Reply(status=503))

    with pytest.raises(openai.InternalServerError) as caught:
        ask(client)

    assert caught.value.status_code == 503
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["type"] == "server_error"
    assert "503" in caught.value.body["message"]


def test_a_raw_string_body_is_sent_verbatim(llm: FakeOpenAI, client: openai.OpenAI) -> None:
    llm.enqueue(Reply(status=502, body="<html>bad gateway</html>"))

    with pytest.raises(openai.APIStatusError) as caught:
        ask(client)

    assert caught.value.status_code == 502
    assert caught.value.response.text == "<html>bad gateway</html>"


def test_the_authorization_header_and_json_body_sent_by_the_client_are_recorded(
    llm: FakeOpenAI, client: openai.OpenAI
) -> None:
    llm.enqueue(Reply.text("ok"))

    ask(client, model="planner-small")

    [recorded] = llm.chat_requests
    assert recorded.method == "POST"
    assert recorded.path == "/v1/chat/completions"
    assert recorded.headers["authorization"] == "Bearer test"
    assert recorded.header("Authorization") == "Bearer test"
    assert recorded.json["model"] == "planner-small"
    assert recorded.json["messages"] == MESSAGES
    assert recorded.body.startswith(b"{")


def test_a_hang_reply_is_ended_by_the_client_timeout_and_close_returns_within_a_second() -> None:
    llm = FakeOpenAI()
    try:
        llm.enqueue(Reply.hang(30))
        with openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0, timeout=0.5) as client:
            started = time.monotonic()
            with pytest.raises(openai.APITimeoutError):
                ask(client)
            assert time.monotonic() - started < 3.0
        llm.wait_for_requests(1, timeout=CLIENT_TIMEOUT)
    finally:
        started = time.monotonic()
        llm.close()
        closing_took = time.monotonic() - started
    assert closing_took < 1.0
    assert llm.closed


def test_close_interrupts_a_delayed_reply_while_the_client_still_waits(llm: FakeOpenAI) -> None:
    llm.enqueue(Reply.hang(30))
    with openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0, timeout=CLIENT_TIMEOUT) as client:
        llm_closed_at: list[float] = []

        def close_once_request_arrives() -> None:
            llm.wait_for_requests(1, timeout=CLIENT_TIMEOUT)
            llm.close()
            llm_closed_at.append(time.monotonic())

        closer = threading.Thread(target=close_once_request_arrives, daemon=True)
        closer.start()
        started = time.monotonic()
        with pytest.raises(openai.APIConnectionError):
            ask(client)
        closer.join(timeout=CLIENT_TIMEOUT)
    assert llm_closed_at, "close() did not return"
    assert llm_closed_at[0] - started < 1.0


def test_replies_are_served_in_queue_order(llm: FakeOpenAI, client: openai.OpenAI) -> None:
    llm.enqueue(Reply.text("first"), Reply.text("second"))
    llm.enqueue(Reply.text("third"))

    assert [ask(client) for _ in range(3)] == ["first", "second", "third"]
    assert llm.pending == 0


def test_the_default_reply_is_used_when_the_queue_is_empty() -> None:
    with FakeOpenAI(default=Reply.text("fallback")) as llm:
        llm.enqueue(Reply.text("scripted"))
        with openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0, timeout=CLIENT_TIMEOUT) as c:
            assert [ask(c) for _ in range(3)] == ["scripted", "fallback", "fallback"]


def test_an_empty_queue_without_default_answers_500_with_a_clear_message(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        ask(client)

    assert caught.value.status_code == 500
    assert "no scripted reply queued" in caught.value.message


def test_models_lists_the_configured_models() -> None:
    with (
        FakeOpenAI(models=["planner-small", "planner-large"]) as llm,
        openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0, timeout=CLIENT_TIMEOUT) as client,
    ):
        assert [m.id for m in client.models.list()] == ["planner-small", "planner-large"]
        assert llm.requests[0].method == "GET"
        assert llm.requests[0].path == "/v1/models"
        assert llm.chat_requests == []


def test_the_client_connection_pool_reuses_one_keep_alive_connection(llm: FakeOpenAI, client: openai.OpenAI) -> None:
    llm.enqueue(Reply.text("a"), Reply.error(400, "bad"), Reply.text("c"))

    ask(client)
    with pytest.raises(openai.BadRequestError):
        ask(client)
    ask(client)
    list(client.models.list())

    assert len(llm.requests) == 4
    assert llm.connections_accepted == 1


def test_reset_clears_the_queue_and_the_records(llm: FakeOpenAI, client: openai.OpenAI) -> None:
    llm.enqueue(Reply.text("used"), Reply.text("dropped"))
    ask(client)

    llm.reset()

    assert llm.requests == []
    assert llm.pending == 0
    with pytest.raises(openai.InternalServerError):
        ask(client)


@pytest.mark.anyio
async def test_the_async_client_works_against_the_same_peer(llm: FakeOpenAI) -> None:
    llm.enqueue(Reply.text("async hello"))
    async with openai.AsyncOpenAI(
        base_url=llm.base_url, api_key="test", max_retries=0, timeout=CLIENT_TIMEOUT
    ) as client:
        completion = await client.chat.completions.create(model="test-model", messages=MESSAGES)

    assert completion.choices[0].message.content == "async hello"
    assert len(llm.chat_requests) == 1
