"""Reading runbooks and inventory from Vault's KV v2 through hvac, with provenance, cache and namespace."""

import json
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from server import Settings
from tests.conftest import call, call_once, connect, rows, until
from tests.peers.vault_server import FakeVault
from tests.vault_seed import INVENTORY, RUNBOOK, TOKEN

pytestmark = pytest.mark.anyio


async def test_read_docs_returns_the_runbook_with_the_kv_version_read(
    vault_settings: Callable[..., Settings], vault: FakeVault, ledger_path: Path, mode: str
) -> None:
    async with connect(vault_settings(), mode) as client:
        result, output = await call(client, "read_docs", {"name": "vm-provisioning"})
    assert not result.is_error, output.get("error")
    assert output["data"] == {"name": "vm-provisioning", "format": "markdown", "content": RUNBOOK}
    [source] = output["provenance"]["sources"]
    assert source == {"kind": "docs", "name": "vm-provisioning", "store": "vault", "version": "2"}
    [request] = vault.requests_to("secret/data/docs/vm-provisioning")
    assert request.method == "GET" and request.headers["x-vault-token"] == TOKEN
    [action] = rows(ledger_path)
    assert (action["action"], action["success"], action["notes"]) == ("read_docs", 1, "")


async def test_a_structured_doc_is_returned_as_json(vault_settings: Callable[..., Settings]) -> None:
    _, output = await call_once(vault_settings(), "read_docs", {"name": "backup-restore"})
    assert output["data"]["format"] == "json"
    assert output["data"]["content"] == {"title": "Backups", "steps": ["snapshot", "verify"]}


async def test_list_docs_lists_the_entries_of_docs_through_kv_list(
    vault_settings: Callable[..., Settings], vault: FakeVault
) -> None:
    _, output = await call_once(vault_settings(), "list_docs")
    # The sub-folder `archive/` is not an entry a name could reach, so it is not listed.
    assert output["data"]["docs"] == ["backup-restore", "vm-provisioning"]
    [request] = vault.requests_to("secret/metadata/docs")
    assert request.method in ("LIST", "GET")


async def test_read_inventory_reads_the_configured_default_or_a_named_inventory(
    vault_settings: Callable[..., Settings],
) -> None:
    async with connect(vault_settings()) as client:
        _, default = await call(client, "read_inventory")
        _, edge = await call(client, "read_inventory", {"name": "edge-sites"})
    _, configured = await call_once(vault_settings(default_inventory="edge-sites"), "read_inventory")
    assert default["data"]["content"] == INVENTORY
    assert default["provenance"]["sources"][0]["version"] == "1"
    assert edge["data"]["content"] == configured["data"]["content"] == {"sites": ["a", "b"]}


async def test_a_configured_mount_and_namespace_are_used_for_every_request(
    vault_settings: Callable[..., Settings], vault: FakeVault
) -> None:
    vault.put("docs/vm-provisioning", {"content": "team kv"}, mount="team-kv")
    vault.add_policy("team", {"team-kv/data/docs/+": ["read"]})
    vault.add_token("team-token-opaque-000111", policies=["team"])
    settings = vault_settings({"mount": "team-kv", "namespace": "ops/planning", "token": "team-token-opaque-000111"})
    _, output = await call_once(settings, "read_docs", {"name": "vm-provisioning"})
    assert output["data"]["content"] == "team kv"
    assert vault.requests_to("team-kv/data/docs/vm-provisioning")
    assert {r.headers.get("x-vault-namespace") for r in vault.requests} == {"ops/planning"}


async def test_a_runbook_read_ten_times_is_fetched_once_and_recorded_ten_times(
    vault_settings: Callable[..., Settings], vault: FakeVault, ledger_path: Path
) -> None:
    async with connect(vault_settings({"cache_ttl_s": 60})) as client:
        outputs = [(await call(client, "read_docs", {"name": "vm-provisioning"}))[1] for _ in range(10)]
    assert len(vault.requests_to("secret/data/docs/vm-provisioning")) == 1
    assert {o["data"]["content"] for o in outputs} == {RUNBOOK}
    assert len(rows(ledger_path)) == len(rows(ledger_path, "call_intents")) == 10


async def test_with_the_cache_off_every_read_goes_to_vault(
    vault_settings: Callable[..., Settings], vault: FakeVault
) -> None:
    async with connect(vault_settings({"cache_ttl_s": 0})) as client:
        for _ in range(3):
            await call(client, "read_docs", {"name": "vm-provisioning"})
    assert len(vault.requests_to("secret/data/docs/vm-provisioning")) == 3


async def test_a_slow_vault_does_not_hold_up_other_calls(
    vault_settings: Callable[..., Settings], vault: FakeVault
) -> None:
    vault.delay = 1.5
    finished: list[str] = []
    async with connect(vault_settings({"timeout_s": 5})) as client:

        async def slow_read() -> None:
            await call(client, "read_docs", {"name": "vm-provisioning"})
            finished.append("read_docs")

        async with anyio.create_task_group() as group:
            group.start_soon(slow_read)
            await until(lambda: bool(vault.requests_to("secret/data/docs/")))
            # While hvac waits on Vault in a worker thread, the event loop still answers and records others.
            with anyio.fail_after(1):
                await client.list_tools()
                _, refused = await call(client, "ssh", {"host": "pve01"})
            finished.append("others")
    assert refused["error"]["type"] == "FORBIDDEN_ACTION"
    assert finished == ["others", "read_docs"]


async def test_the_ledger_never_holds_the_vault_token(
    vault_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    async with connect(vault_settings()) as client:
        await call(client, "read_docs", {"name": "vm-provisioning"})
        await call(client, "read_docs", {"name": "vm-provisioning", "note": TOKEN})
        await call(client, "generate_plan", {"description": f"use token {TOKEN}"})
    raw = b"".join(p.read_bytes() for p in ledger_path.parent.iterdir())
    assert TOKEN.encode() not in raw
    assert any("[REDACTED]" in json.loads(r["arguments"]).get("description", "") for r in rows(ledger_path))


async def test_an_entry_deleted_and_written_again_as_version_1_is_read_anew(
    vault_settings: Callable[..., Settings], vault: FakeVault
) -> None:
    vault.put("docs/rewritten", {"content": "the first runbook"})
    vault.put("inventory/rewritten", {"cluster": "first"})
    async with connect(vault_settings()) as client:
        _, doc_before = await call(client, "read_docs", {"name": "rewritten"})
        _, inventory_before = await call(client, "read_inventory", {"name": "rewritten"})
        for path, data in (
            ("docs/rewritten", {"content": "the second runbook"}),
            ("inventory/rewritten", {"cluster": "second"}),
        ):
            vault.delete_metadata(path)
            assert vault.put(path, data) == 1  # Vault numbers it 1 again
        _, doc_after = await call(client, "read_docs", {"name": "rewritten"})
        _, inventory_after = await call(client, "read_inventory", {"name": "rewritten"})
    assert doc_before["data"]["content"] == "the first runbook"
    assert inventory_before["data"]["content"] == {"cluster": "first"}
    assert doc_after["data"]["content"] == "the second runbook"
    assert inventory_after["data"]["content"] == {"cluster": "second"}
    assert doc_after["provenance"]["sources"][0]["version"] == "1"
