"""A Vault that lies: every malformed answer is a VAULT_ERROR that says what was wrong, and nothing of it is used.

What answers at VAULT_ADDR may be a proxy or another service; `data: null`, a body that is not JSON or a version
that carries the token must neither crash a tool (INTERNAL_ERROR) nor reach an output.
"""

import json
from collections.abc import Callable
from typing import Any

import pytest

from server import Settings
from server.call.failures import ToolFailure
from server.stores import VaultStore
from server.vault import VaultConfig
from tests.conftest import call, call_once, connect
from tests.peers.vault_server import FakeVault
from tests.vault_seed import RUNBOOK, TOKEN

pytestmark = pytest.mark.anyio

_JSON = {"Content-Type": "application/json"}


def _kv(data: Any = None, version: Any = 1) -> bytes:
    return json.dumps({"data": {"data": data, "metadata": {"version": version}}}).encode()


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"<html>502 Bad Gateway</html>", {"Content-Type": "text/html"}),
        (b"{not json", _JSON),
        (b"", _JSON),
        (json.dumps({"data": None}).encode(), _JSON),
        (json.dumps([1, 2]).encode(), _JSON),
        (_kv("a string"), _JSON),
        (_kv({"content": "x"}, version=TOKEN), _JSON),
        (_kv({"content": "x"}, version="3"), _JSON),
        (_kv({"content": "x"}, version=0), _JSON),
        (_kv({"content": "x"}, version=-1), _JSON),
        (_kv({"content": "x"}, version=1.5), _JSON),
        (_kv({"content": "x"}, version=True), _JSON),
        (_kv({"content": "x"}, version=2**64), _JSON),
        (json.dumps({"data": {"data": {"content": "x"}, "metadata": None}}).encode(), _JSON),
    ],
    ids=lambda value: None if isinstance(value, dict) else value[:40].decode(errors="replace"),
)
async def test_a_malformed_read_is_a_vault_error_and_nothing_of_it_is_returned(
    vault_settings: Callable[..., Settings], vault: FakeVault, body: bytes, headers: dict[str, str]
) -> None:
    vault.answer_raw("secret/data/docs/vm-provisioning", 200, body, headers=headers)
    async with connect(vault_settings()) as client:
        result, output = await call(client, "read_docs", {"name": "vm-provisioning"})
        vault.answer_raw("secret/data/docs/vm-provisioning", 404, b'{"errors":[]}', headers=_JSON)
        _, after = await call(client, "read_docs", {"name": "vm-provisioning"})
    assert result.is_error and output["error"]["type"] == "VAULT_ERROR", output["error"]
    assert "malformed" in output["error"]["message"] or "could not be read" in output["error"]["message"]
    assert "VAULT_ADDR" in output["error"]["recommended_action"]
    assert TOKEN not in json.dumps(output)
    assert after["error"]["type"] == "NOT_FOUND"  # the server keeps serving


@pytest.mark.parametrize(
    "data", [None, {"keys": "docs"}, {"keys": [{"name": "x"}]}, {"keys": ["ok", 7]}, {"nothing": []}]
)
async def test_a_malformed_list_is_a_vault_error(
    vault_settings: Callable[..., Settings], vault: FakeVault, data: Any
) -> None:
    vault.answer_raw("secret/metadata/docs", 200, json.dumps({"data": data}).encode(), headers=_JSON)
    _, output = await call_once(vault_settings(), "list_docs")
    assert output["error"]["type"] == "VAULT_ERROR" and "data" in output["error"]["message"]


@pytest.mark.parametrize(
    "lie",
    [
        {"ttl": float("nan")},
        {"ttl": float("inf")},
        {"ttl": -5},
        {"ttl": 1e300},
        {"ttl": "3600"},
        {"creation_ttl": [1]},
        {"policies": "root"},
        {"policies": [{"name": "root"}]},
        {"policies": ["p"] * 1000},
    ],
    ids=str,
)
async def test_a_token_lookup_that_lies_about_lifetime_or_policies_is_a_vault_error(
    vault_settings: Callable[..., Settings], vault: FakeVault, lie: dict[str, Any]
) -> None:
    data = {"policies": ["default", "planner"], "ttl": 3600, "creation_ttl": 3600, "renewable": True, **lie}
    vault.answer_raw("auth/token/lookup-self", 200, json.dumps({"data": data}).encode(), headers=_JSON)
    result, output = await call_once(vault_settings(), "read_docs", {"name": "vm-provisioning"})
    assert result.is_error and output["error"]["type"] == "VAULT_ERROR", output["error"]
    assert "auth/token/lookup-self" in output["error"]["message"]


async def test_policy_names_are_kept_printable_and_short(
    vault_config: Callable[..., VaultConfig], vault: FakeVault
) -> None:
    data = {"policies": ["planner", "\x1b]0;owned\x07" + "x" * 500], "ttl": 3600, "renewable": True}
    vault.answer_raw("auth/token/lookup-self", 200, json.dumps({"data": data}).encode(), headers=_JSON)
    store = VaultStore(vault_config(), learn_secret=lambda *_: None)
    try:
        entry = await store.read_doc("vm-provisioning")
    finally:
        await store.aclose()
    assert entry.content == RUNBOOK
    planner, odd = store.session.policies
    assert planner == "planner" and len(odd) <= 64 and odd.isprintable() and "\x1b" not in odd


@pytest.mark.parametrize("data", [None, "key", ["key"]])
async def test_a_malformed_llm_key_entry_is_a_vault_error(
    vault_config: Callable[..., VaultConfig], vault: FakeVault, data: Any
) -> None:
    vault.answer_raw("secret/data/api-keys/", 200, _kv(data), headers=_JSON)
    assert (await _llm_key_failure(vault_config())).kind == "VAULT_ERROR"


@pytest.mark.parametrize(
    "fmt",
    [TOKEN + " " * 10, "x" * 100_000, "\x1b]52;c;b3duZWQ=\x07", ["markdown"]],
    ids=["token", "long", "osc52", "list"],
)
async def test_a_runbook_format_that_is_not_a_format_name_is_returned_only_as_scrubbed_json(
    vault_settings: Callable[..., Settings], vault: FakeVault, fmt: Any
) -> None:
    vault.put("docs/odd-format", {"content": "steps", "format": fmt})
    result, output = await call_once(vault_settings(), "read_docs", {"name": "odd-format"})
    assert not result.is_error, output["error"]
    assert output["data"]["format"] == "json"
    assert output["data"]["content"]["content"] == "steps"
    assert TOKEN not in json.dumps(output)


@pytest.mark.parametrize(
    "key", ["sk-key\r\nX-Injected: 1", "sk key", "k" * 5000, "sk-ключ"], ids=["crlf", "space", "long", "unicode"]
)
async def test_an_llm_key_that_could_not_be_a_header_value_is_a_vault_error(
    vault_config: Callable[..., VaultConfig], vault: FakeVault, key: str
) -> None:
    vault.put("api-keys/openrouter", {"api_key": key})
    failure = await _llm_key_failure(vault_config())
    assert failure.kind == "VAULT_ERROR" and "OPENAI_API_KEY" in failure.recommended_action
    assert key not in failure.message


async def _llm_key_failure(config: VaultConfig) -> ToolFailure:
    store = VaultStore(config, learn_secret=lambda *_: None)
    try:
        with pytest.raises(ToolFailure) as failure:
            await store.read_llm_key()
    finally:
        await store.aclose()
    return failure.value
