"""The openai peer's tests: a real openai client bound to the peer, and the requests they send it."""

import json
import socket
from collections.abc import Iterator

import openai
import pytest
from openai.types.shared_params import ResponseFormatJSONSchema

from tests.peers.openai_server import FakeOpenAI

# Every client call is bounded: no test can wait longer than this on the peer.
CLIENT_TIMEOUT = 5.0
MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "plan it"}]


@pytest.fixture
def client(llm: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0, timeout=CLIENT_TIMEOUT) as c:
        yield c


def ask(client: openai.OpenAI, model: str = "test-model") -> str | None:
    completion = client.chat.completions.create(model=model, messages=MESSAGES)
    return completion.choices[0].message.content


def send_raw_chat_request(llm: FakeOpenAI) -> socket.socket:
    """Open a bare connection and send one chat completion request on it, without reading the answer."""
    body = json.dumps({"model": "test-model", "messages": MESSAGES}).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {llm.host}:{llm.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    sock = socket.create_connection((llm.host, llm.port), timeout=CLIENT_TIMEOUT)
    sock.sendall(head.encode() + body)
    return sock


SCHEMA_FORMAT: ResponseFormatJSONSchema = {
    "type": "json_schema",
    "json_schema": {
        "name": "plan",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"steps": {"type": "array", "items": {"type": "string"}}},
            "required": ["steps"],
            "additionalProperties": False,
        },
    },
}
