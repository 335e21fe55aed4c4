"""Least privilege in our code: a name reaches only its own folder, and every refusal sends nothing to Vault."""

from collections.abc import Callable
from pathlib import Path

import pytest

from server import Settings
from server.call.failures import ToolFailure
from server.stores import VaultStore
from server.vault import VaultConfig
from tests.conftest import call, call_once, connect, rows
from tests.peers.vault_server import FakeVault
from tests.vault_seed import LLM_KEY

pytestmark = pytest.mark.anyio

ESCAPES = {
    "parent": "../api-keys/openrouter",
    "parent-in-middle": "vm-provisioning/../../api-keys/openrouter",
    "dot-dot": "..",
    "percent-encoded-dots": "%2e%2e%2fapi-keys%2fopenrouter",
    "percent-encoded-slash": "docs%2F..%2Fapi-keys",
    "double-encoded": "%252e%252e",
    "absolute": "/v1/secret/data/api-keys/openrouter",
    "metadata-prefix": "metadata/docs/vm-provisioning",
    "data-prefix": "data/api-keys/openrouter",
    "other-mount": "cubbyhole/planner",
    "other-mount-data": "secret/data/other/secret",
    "api-keys": "api-keys/openrouter",
    "backslash": "..\\api-keys",
    "query": "vm-provisioning?version=1",
    "fragment": "vm-provisioning#x",
    "nul": "vm-provisioning\x00",
}


@pytest.mark.parametrize("tool", ["read_docs", "read_inventory"])
@pytest.mark.parametrize("name", ESCAPES.values(), ids=ESCAPES.keys())
async def test_a_name_that_could_reach_another_path_is_refused_before_any_request(
    vault_settings: Callable[..., Settings], vault: FakeVault, ledger_path: Path, tool: str, name: str
) -> None:
    result, output = await call_once(vault_settings(), tool, {"name": name})
    assert result.is_error and output["error"]["type"] == "INVALID_NAME"
    assert "name" in output["error"]["message"]
    assert vault.requests == []  # nothing reached Vault: not a read, not even a token lookup
    assert LLM_KEY not in str(output)
    [action] = rows(ledger_path)
    assert (action["refused"], action["error_type"]) == (1, "INVALID_NAME")


@pytest.mark.parametrize("name", ESCAPES.values(), ids=ESCAPES.keys())
async def test_the_vault_store_refuses_such_names_on_its_own(
    vault_config: Callable[..., VaultConfig], vault: FakeVault, name: str
) -> None:
    # Defence in depth: whatever calls the store next (a resource template, say) gets the same guard.
    store = VaultStore(vault_config(), learn_secret=lambda *_: None)
    try:
        for read in (store.read_doc, store.read_inventory):
            with pytest.raises(ToolFailure) as refused:
                await read(name)
            assert refused.value.kind == "INVALID_NAME"
    finally:
        await store.aclose()
    assert vault.requests == []


async def test_the_reason_for_a_refusal_is_specific(vault_settings: Callable[..., Settings]) -> None:
    async with connect(vault_settings()) as client:
        _, slash = await call(client, "read_docs", {"name": "api-keys/openrouter"})
        _, dots = await call(client, "read_docs", {"name": ".."})
        _, percent = await call(client, "read_docs", {"name": "%2e%2e"})
    assert "'/'" in slash["error"]["message"]
    assert "'..'" in dots["error"]["message"]
    assert "percent" in percent["error"]["message"]


async def test_the_llm_key_path_is_not_readable_through_any_tool(
    vault_settings: Callable[..., Settings], vault: FakeVault
) -> None:
    async with connect(vault_settings()) as client:
        listed = [t.name for t in (await client.list_tools()).tools]
        _, docs = await call(client, "read_docs", {"name": "openrouter"})
        _, inventory = await call(client, "read_inventory", {"name": "openrouter"})
    assert docs["error"]["type"] == inventory["error"]["type"] == "NOT_FOUND"
    # Only the folder of the tool was asked for: docs/openrouter and inventory/openrouter, never api-keys/.
    assert [r.path for r in vault.requests if r.path.startswith("secret/")] == [
        "secret/data/docs/openrouter",
        "secret/data/inventory/openrouter",
    ]
    assert not any(name.startswith(("read_secret", "write", "list_secrets")) for name in listed)
