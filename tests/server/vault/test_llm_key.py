"""The LLM key read from Vault (`api-keys/openrouter`) when it is not in the environment, and never leaked."""

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from server import Settings
from server.config.settings import LLMConfig
from tests.conftest import PLAN, call, call_once, connect, rows
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.peers.vault_server import FakeVault
from tests.vault_seed import LLM_KEY

pytestmark = pytest.mark.anyio


def _settings(vault_settings: Callable[..., Settings], llm: FakeOpenAI) -> Settings:
    return vault_settings(llm=LLMConfig(base_url=llm.base_url, model="test-model", key_from_vault=True, max_retries=0))


async def test_the_key_is_read_from_vault_once_and_sent_only_to_the_endpoint(
    vault_settings: Callable[..., Settings],
    vault: FakeVault,
    llm: FakeOpenAI,
    ledger_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A reply that quotes the key, as a compromised or confused endpoint might.
    llm.enqueue(Reply.text(json.dumps({**PLAN, "summary": f"using {LLM_KEY}"})), Reply.text(json.dumps(PLAN)))
    with caplog.at_level(logging.DEBUG):
        async with connect(_settings(vault_settings, llm)) as client:
            _, first = await call(client, "generate_plan", {"description": "Add a VM"})
            _, second = await call(client, "generate_plan", {"description": f"Add a VM; key is {LLM_KEY}"})
    assert [r.headers["authorization"] for r in llm.chat_requests] == [f"Bearer {LLM_KEY}"] * 2
    assert len(vault.requests_to("secret/data/api-keys/openrouter")) == 1
    assert first["plan"] is not None and second["decision"] != "ERROR"
    assert LLM_KEY not in json.dumps([first, second])
    assert LLM_KEY not in caplog.text
    assert LLM_KEY not in json.dumps([r.json for r in llm.chat_requests])  # redacted from the prompt too
    raw = b"".join(p.read_bytes() for p in ledger_path.parent.iterdir())
    assert LLM_KEY.encode() not in raw and len(rows(ledger_path)) == 2


async def test_a_key_in_the_environment_wins_and_vault_is_not_asked(
    vault_settings: Callable[..., Settings], vault: FakeVault, llm: FakeOpenAI
) -> None:
    llm.enqueue(Reply.text(json.dumps(PLAN)))
    settings = vault_settings(
        llm=LLMConfig(api_key="env-key-opaque-000000001", base_url=llm.base_url, model="m", max_retries=0)
    )
    async with connect(settings) as client:
        await call(client, "generate_plan", {"description": "Add a VM"})
    assert llm.chat_requests[0].headers["authorization"] == "Bearer env-key-opaque-000000001"
    assert vault.requests_to("secret/data/api-keys/") == []


async def test_without_a_key_in_vault_a_local_endpoint_is_called_without_one(
    vault_settings: Callable[..., Settings], vault: FakeVault, llm: FakeOpenAI
) -> None:
    vault.put("api-keys/openrouter", {"note": "no api_key field"})
    llm.enqueue(Reply.text(json.dumps(PLAN)))
    result, _ = await call_once(_settings(vault_settings, llm), "generate_plan", {"description": "Add a VM"})
    assert not result.is_error
    assert LLM_KEY not in llm.chat_requests[0].headers.get("authorization", "")


async def test_a_vault_outage_while_fetching_the_key_is_a_vault_error(
    vault_settings: Callable[..., Settings], vault: FakeVault, llm: FakeOpenAI
) -> None:
    vault.sealed = True
    _, output = await call_once(_settings(vault_settings, llm), "generate_plan", {"description": "Add a VM"})
    assert output["error"]["type"] == "VAULT_SEALED"
    assert llm.chat_requests == []


async def test_a_rejected_key_is_read_again_from_vault_on_the_next_call(
    vault_settings: Callable[..., Settings], vault: FakeVault, llm: FakeOpenAI
) -> None:
    llm.enqueue(Reply.error(401), Reply.text(json.dumps(PLAN)))
    async with connect(_settings(vault_settings, llm)) as client:
        _, rejected = await call(client, "generate_plan", {"description": "Add a VM"})
        vault.put("api-keys/openrouter", {"api_key": "rotated-key-opaque-0000002"})
        _, accepted = await call(client, "generate_plan", {"description": "Add a VM"})
    assert rejected["error"]["type"] == "LLM_HTTP_ERROR" and accepted["plan"] is not None
    assert "api-keys/openrouter" in rejected["error"]["recommended_action"]
    assert llm.chat_requests[1].headers["authorization"] == "Bearer rotated-key-opaque-0000002"
