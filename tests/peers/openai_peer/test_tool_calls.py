"""FakeOpenAI answers with function calls as a model that uses tools does, so an agent framework's loop (call the
tools the model asked for, send their results back, take the final answer) can run against it."""

import json

import openai
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from tests.peers.openai_peer.conftest import MESSAGES
from tests.peers.openai_server import FakeOpenAI, Reply

_TOOLS: list[ChatCompletionToolParam] = [
    {"type": "function", "function": {"name": "read_docs", "parameters": {"type": "object", "properties": {}}}}
]


def test_a_scripted_call_reaches_the_client_as_tool_calls(llm: FakeOpenAI, client: openai.OpenAI) -> None:
    llm.enqueue(Reply.calls(("read_docs", {"name": "vm-provisioning"}), ("list_docs", {})), Reply.calls(("x", {})))

    completion = client.chat.completions.create(model="test-model", messages=MESSAGES, tools=_TOOLS)
    again = client.chat.completions.create(model="test-model", messages=MESSAGES, tools=_TOOLS)

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = [(c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls or []]  # type: ignore[union-attr]
    assert calls == [("read_docs", {"name": "vm-provisioning"}), ("list_docs", {})]
    ids = [c.id for reply in (choice, again.choices[0]) for c in reply.message.tool_calls or []]
    assert len(set(ids)) == 3 and all(i.startswith("call_") for i in ids)


def test_the_tool_results_the_client_sends_back_are_recorded(llm: FakeOpenAI, client: openai.OpenAI) -> None:
    llm.enqueue(Reply.calls(("read_docs", {"name": "x"})), Reply.text("done"))
    asked = client.chat.completions.create(model="test-model", messages=MESSAGES, tools=_TOOLS).choices[0].message
    history: list[ChatCompletionMessageParam] = [
        *MESSAGES,
        asked.model_dump(exclude_none=True),  # type: ignore[list-item]
        {"role": "tool", "tool_call_id": asked.tool_calls[0].id, "content": '{"data": null}'},  # type: ignore[index]
    ]

    final = client.chat.completions.create(model="test-model", messages=history, tools=_TOOLS)

    assert final.choices[0].message.content == "done" and final.choices[0].message.tool_calls is None
    sent = llm.chat_requests[1].json["messages"]
    assert sent[-1] == {"role": "tool", "tool_call_id": asked.tool_calls[0].id, "content": '{"data": null}'}  # type: ignore[index]
    assert sent[-2]["tool_calls"][0]["function"]["name"] == "read_docs"


def test_a_reply_without_calls_carries_no_tool_calls_field(llm: FakeOpenAI) -> None:
    llm.enqueue(Reply.text("plain"))

    raw = openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0, timeout=5.0).with_raw_response
    body = json.loads(raw.chat.completions.create(model="test-model", messages=MESSAGES).text)

    assert "tool_calls" not in body["choices"][0]["message"]
    assert body["choices"][0]["finish_reason"] == "stop"
