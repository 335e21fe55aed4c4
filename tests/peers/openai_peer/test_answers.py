"""FakeOpenAI answers the real openai client as an OpenAI server would: completions, errors, models, keys,
structured outputs, one keep-alive connection."""

import openai
import pytest
from openai.types.shared_params import ResponseFormatJSONSchema

from tests.peers.openai_peer.conftest import CLIENT_TIMEOUT, MESSAGES, SCHEMA_FORMAT, ask
from tests.peers.openai_server import FakeOpenAI, Reply


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


def test_with_nothing_queued_a_request_gets_the_reply_for_the_schema_it_names_else_the_default() -> None:
    by_schema = {"plan": Reply.text("a plan"), "analysis": Reply.text("an analysis")}
    with FakeOpenAI(default=Reply.text("fallback"), by_schema=by_schema) as llm:
        llm.enqueue(Reply.text("scripted"))
        with openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0, timeout=CLIENT_TIMEOUT) as c:

            def answer(schema: str | None) -> str | None:
                if schema is None:
                    completion = c.chat.completions.create(model="test-model", messages=MESSAGES)
                else:
                    named: ResponseFormatJSONSchema = {**SCHEMA_FORMAT, "json_schema": {"name": schema}}
                    completion = c.chat.completions.create(model="test-model", messages=MESSAGES, response_format=named)
                return completion.choices[0].message.content

            assert [answer(s) for s in ("analysis", "analysis", "plan", "other", None)] == [
                "scripted", "an analysis", "a plan", "fallback", "fallback"
            ]  # fmt: skip


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


def test_a_scripted_finish_reason_reaches_the_client(llm: FakeOpenAI, client: openai.OpenAI) -> None:
    llm.enqueue(Reply.text("route via ed", finish_reason="length"), Reply.text("whole"))

    cut = client.chat.completions.create(model="test-model", messages=MESSAGES, max_tokens=3)
    whole = client.chat.completions.create(model="test-model", messages=MESSAGES)

    assert (cut.choices[0].message.content, cut.choices[0].finish_reason) == ("route via ed", "length")
    assert whole.choices[0].finish_reason == "stop"


def test_a_wrong_api_key_is_refused_with_401_without_using_a_queued_reply() -> None:
    with FakeOpenAI(api_key="sk-right") as llm:
        llm.enqueue(Reply.text("kept for the right key"))
        with openai.OpenAI(base_url=llm.base_url, api_key="sk-wrong", max_retries=0, timeout=CLIENT_TIMEOUT) as wrong:
            with pytest.raises(openai.AuthenticationError) as caught:
                ask(wrong)
            with pytest.raises(openai.AuthenticationError):
                wrong.models.list()
        assert caught.value.status_code == 401
        assert caught.value.body == {
            "message": "Incorrect API key provided",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
        assert llm.pending == 1
        assert [(r.path, r.header("authorization")) for r in llm.requests] == [
            ("/v1/chat/completions", "Bearer sk-wrong"),
            ("/v1/models", "Bearer sk-wrong"),
        ]

        with openai.OpenAI(base_url=llm.base_url, api_key="sk-right", max_retries=0, timeout=CLIENT_TIMEOUT) as right:
            assert ask(right) == "kept for the right key"
        assert llm.pending == 0


def test_a_rotated_api_key_refuses_the_old_one(llm: FakeOpenAI, client: openai.OpenAI) -> None:
    llm.default = Reply.text("ok")
    assert ask(client) == "ok"  # no api_key: any key is accepted

    llm.api_key = "sk-rotated"

    with pytest.raises(openai.AuthenticationError):
        ask(client)
    with openai.OpenAI(base_url=llm.base_url, api_key="sk-rotated", max_retries=0, timeout=CLIENT_TIMEOUT) as rotated:
        assert ask(rotated) == "ok"


def test_response_format_is_refused_with_400_when_unsupported_without_using_a_queued_reply() -> None:
    with FakeOpenAI(response_format=False) as llm:
        llm.enqueue(Reply.text('{"steps": []}'))
        with openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0, timeout=CLIENT_TIMEOUT) as c:
            with pytest.raises(openai.BadRequestError) as caught:
                c.chat.completions.create(model="test-model", messages=MESSAGES, response_format=SCHEMA_FORMAT)
            assert llm.pending == 1
            assert ask(c) == '{"steps": []}'  # the same request without response_format is answered
    assert caught.value.status_code == 400
    assert caught.value.body == {
        "message": "response_format is not supported by this model",
        "type": "invalid_request_error",
        "param": "response_format",
        "code": None,
    }
    assert llm.chat_requests[0].json["response_format"] == SCHEMA_FORMAT
    assert llm.pending == 0


def test_response_format_is_accepted_by_default_and_can_be_turned_off(llm: FakeOpenAI, client: openai.OpenAI) -> None:
    llm.enqueue(Reply.text('{"steps": ["add a VM"]}'), Reply.text("unused"))

    completion = client.chat.completions.create(model="test-model", messages=MESSAGES, response_format=SCHEMA_FORMAT)

    assert completion.choices[0].message.content == '{"steps": ["add a VM"]}'
    assert llm.pending == 1
    llm.supports_response_format = False
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="test-model", messages=MESSAGES, response_format=SCHEMA_FORMAT)
    assert llm.pending == 1
